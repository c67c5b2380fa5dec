"""Keras Tuner across processes: a chief (the oracle) and workers.

rnntune starts the chief itself, bound to 127.0.0.1 unless told otherwise,
and one worker process per group of GPUs (each with its own
`CUDA_VISIBLE_DEVICES`) or per concurrent CPU trial, sets the `KERASTUNER_*`
variables, streams the workers' output into one view, restarts a worker that
dies (Keras Tuner hands the restarted worker the same trial, which continues
from its last finished epoch) and stops them all at the end or on Ctrl-C.
Each worker process runs `work` (`rnntune worker --oracle HOST:PORT` runs
it too, to join from another machine).
"""

import json
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from tuning.trial.files import write_json
from tuning.trial.noise import is_noise

CHIEF = "chief.json"  # in the workdir: where its chief serves
MAX_RESTARTS = 3


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def set_env(role: str, host: str, port: int) -> None:
    """The variables Keras Tuner reads to find its chief."""
    os.environ["KERASTUNER_TUNER_ID"] = role
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)


def worker_groups(*, gpus: int, gpus_per_trial: int,
                  concurrent_trials: int | None) -> list[str | None]:
    """`CUDA_VISIBLE_DEVICES` of each worker (None: no GPU, CPU trials)."""
    if gpus and gpus_per_trial:
        groups = [",".join(str(g) for g in range(i, i + gpus_per_trial))
                  for i in range(0, gpus - gpus_per_trial + 1,
                                 gpus_per_trial)]
        return groups[:concurrent_trials] if concurrent_trials else groups
    return [None] * (concurrent_trials or 1)


def _wait_for_port(host: str, port: int, chief: threading.Thread | None,
                   timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chief is not None and not chief.is_alive():
            raise RuntimeError("the Keras Tuner chief stopped before serving")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the Keras Tuner chief did not listen on "
                       f"{host}:{port} within {timeout:.0f} s")


def wait_for_chief(host: str, port: int, timeout: float = 300) -> None:
    """Blocks until a chief accepts connections (workers may start first).

    Raises:
        TimeoutError: none did within `timeout` seconds.
    """
    try:
        _wait_for_port(host, port, None, timeout)
    except RuntimeError as e:
        raise TimeoutError(str(e)) from None


def check_chief(workdir: pathlib.Path, port: int) -> None:
    """Refuses a worker whose `--oracle` is not the chief of the study in
    `workdir` (it would run another study's trials and write their
    results into this one's trials).

    Raises:
        ValueError: `workdir`'s chief serves on another port, or none has
            served there.
    """
    try:
        served = json.loads((workdir / CHIEF).read_text())["port"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{workdir}: no Keras Tuner chief has served this "
                         "study; start it with rnntune tune ... "
                         "--concurrent-trials 0") from None
    if served != port:
        raise ValueError(f"{workdir}: its study's chief serves on port "
                         f"{served}, not {port}; join it with --oracle "
                         f"HOST:{served}, or give the --workdir of the "
                         f"study served on port {port}")


def work(workdir: pathlib.Path, *, tuner_id: str, host: str, port: int,
         strategy=None, report=print) -> None:
    """Runs trials for the chief at `host:port` until its study is done.

    Args:
        workdir: the study's workdir (shared with the chief).
        tuner_id: this worker's Keras Tuner id (unique per worker).
        host, port: the chief's oracle.
        strategy: each trial's distribution strategy.
        report: receives progress lines.
    """
    from tuning.backends import keras_tuner
    from tuning.study.progress import Progress
    from tuning.study.recorder import TrialRecorder
    from tuning.study.results import ResultsTable
    from tuning.study.runner import TrialTrainer
    from tuning.study.spec import load_spec
    from tuning.trial.run import StudyDir

    set_env(tuner_id, host, port)
    spec = load_spec(workdir)
    table = ResultsTable(workdir, spec.space)
    study = StudyDir(workdir)
    keras_tuner.search(
        TrialRecorder(study, spec, table, report=report,
                      on_event=Progress(spec, table, report)),
        TrialTrainer(study, spec, report=report, strategy=strategy))


def _work_in_this_process(arguments: str) -> None:
    """A worker process's whole life (see `worker_command`)."""
    from tuning.trial.devices import make_strategy, parse_devices
    from tuning.trial.workdir import private_umask

    options = json.loads(arguments)
    private_umask()  # as the chief's own files
    strategy = make_strategy(parse_devices(options.pop("devices")))
    work(pathlib.Path(options.pop("workdir")), strategy=strategy,
         report=lambda line: print(line, flush=True), **options)


def worker_command(workdir: pathlib.Path, *, tuner_id: str, host: str,
                   port: int, devices: str) -> list[str]:
    """A fresh interpreter that runs `work` for the chief at `host:port`."""
    arguments = json.dumps({"workdir": str(workdir), "tuner_id": tuner_id,
                            "host": host, "port": port, "devices": devices})
    return [sys.executable, "-c",
            "import sys\n"
            "from tuning.backends.kt_workers import _work_in_this_process\n"
            "_work_in_this_process(sys.argv[1])", arguments]


class Worker:
    """One worker process, its output streamed as `[worker i] ...` lines
    (without the libraries' start-up chatter unless `verbose`)."""

    def __init__(self, index: int, command: list[str], env: dict,
                 report, *, verbose: bool = False):
        self.index = index
        self.command = command
        self.env = env
        self.report = report
        self.verbose = verbose
        self.restarts = 0
        self.given_up = False
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._stream, args=(self.process,),
                         daemon=True).start()

    def _stream(self, process) -> None:
        for line in process.stdout:
            line = line.rstrip()
            if line and (self.verbose or not is_noise(line)):
                self.report(f"[worker {self.index}] {line}")

    def step(self, report) -> bool:
        """Restarts the worker if it died; True while it has work."""
        if self.given_up:
            return False
        code = self.process.poll()
        if code is None:
            return True
        if code == 0:
            return False
        if self.restarts < MAX_RESTARTS:
            self.restarts += 1
            report(f"[worker {self.index}] died (exit {code}); restarting "
                   "it: its trial continues from its last finished epoch")
            self.start()
            return True
        report(f"[worker {self.index}] died (exit {code}) after "
               f"{MAX_RESTARTS} restarts; giving it up")
        self.given_up = True
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(workdir: pathlib.Path, chief_search, *, groups: list[str | None],
        devices: str, host: str = "127.0.0.1", port: int | None = None,
        report=print, verbose: bool = False) -> None:
    """Runs the chief in this process and the workers beside it.

    Args:
        workdir: the study's workdir (shared with the workers).
        chief_search: starts the chief tuner's `search()` (blocks while
            serving the oracle); called once the `KERASTUNER_*` variables
            are set.
        groups: each worker's `CUDA_VISIBLE_DEVICES` (None: CPU only).
        devices: each worker's `--devices`.
        host, port: where the oracle listens.
        report: receives the chief's and the workers' lines.
        verbose: keep the libraries' start-up chatter in the workers'.
    """
    port = port or free_port(host)
    set_env("chief", host, port)
    # Before it serves: a worker that reaches the port checks it is this
    # study's chief (`check_chief`).
    write_json(workdir / CHIEF, {"host": host, "port": port})
    chief = threading.Thread(target=chief_search, daemon=True)
    chief.start()
    _wait_for_port(host, port, chief)
    report(f"Keras Tuner chief at {host}:{port}; {len(groups)} worker(s)"
           + ("" if groups else ": waiting for `rnntune worker --oracle "
              f"{host}:{port} --workdir {shlex.quote(str(workdir))}` to "
              "join"))
    if not groups:  # the chief alone ends once the joined workers are done
        chief.join()
        return
    workers = []
    for i, group in enumerate(groups):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if group is not None:
            env["CUDA_VISIBLE_DEVICES"] = group
        command = worker_command(workdir, tuner_id=f"worker{i}", host=host,
                                 port=port, devices=devices)
        workers.append(Worker(i, command, env, report, verbose=verbose))
    try:
        while any(w.step(report) for w in workers):
            time.sleep(0.5)
        if not any(w.given_up for w in workers):
            # Workers that joined by hand may still be training: the
            # oracle serves until their trials end (Keras Tuner's chief
            # checks every 20 s), or they would wait on it forever.
            while chief.is_alive():
                chief.join(0.5)
    except KeyboardInterrupt:
        report("stopping the workers")
        for worker in workers:
            worker.stop()
        raise
