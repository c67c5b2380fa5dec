"""Ray Tune backend: searchers and schedulers pick and stop trials; each
trial is the one trial function in a Ray worker, reporting every epoch.

    run(workdir, spec, table, progress, resume=False, runtime=Runtime())

This module is the driver: it connects to Ray, runs the experiment and
records the trials from what they report (`StudyCallback`). The space as
Ray sees it is `ray_space`; what runs inside a trial is `ray_worker`.
Trials report each epoch with a checkpoint of their training state
(`tuning.trial.state`), so a paused, preempted or exploited trial
continues from its last finished epoch. The experiment directory,
`WORKDIR/ray/study`, reopens with Ray's own `tune.Tuner.restore` and
`ResultGrid`.
"""

import contextlib
import logging
import math
import os
import pathlib
import sys
import warnings

for _name, _value in (("RAY_USAGE_STATS_ENABLED", "0"),
                      ("RAY_AUTH_MODE", "disabled"),
                      ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"),
                      # Ray's own TensorBoard files (the trials write
                      # theirs): its CSV and JSON results are named below.
                      ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")):
    os.environ.setdefault(_name, _value)

try:
    import ray
    from ray import tune
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("the ray backend needs Ray Tune: pip install "
                      "'rnntune[ray]'") from e

from data_pipeline.cache import ShippedData  # noqa: E402
from tuning.backends.ray_space import search  # noqa: E402
from tuning.backends.ray_worker import trainable  # noqa: E402
from tuning.study.progress import Progress  # noqa: E402
from tuning.study.recorder import TrialRecorder  # noqa: E402
from tuning.study.results import ResultsTable  # noqa: E402
from tuning.study.runner import TrialFunction  # noqa: E402
from tuning.study.spec import Runtime, StudyFailed, StudySpec  # noqa: E402
from tuning.trial.config import ConfigError  # noqa: E402
from tuning.trial.run import RunMetrics, Status, StudyDir, status_of  # noqa: E402

EXPERIMENT = "study"
OBJECT_STORE_BYTES = 200_000_000  # a local Ray's, without shipped data
ENDED = (Status.COMPLETED, Status.STOPPED_EARLY, Status.FAILED)

# The recorder of the study this process drives: Ray keeps its callbacks
# in the experiment's state (`tuner.pkl`) and gives them back on restore,
# while what they record to (the results table, the caller's `report`)
# belongs to this process; `run` binds it around `fit`.
_recorder: TrialRecorder | None = None


@contextlib.contextmanager
def _recording(recorder: TrialRecorder):
    global _recorder
    _recorder = recorder
    try:
        yield
    finally:
        _recorder = None


def _active_recorder() -> TrialRecorder:
    if _recorder is None:
        raise RuntimeError("no study is recording: Ray's callbacks run "
                           "inside tuning.backends.ray_tune.run")
    return _recorder


class StudyCallback(tune.Callback):
    """Records the trials from what they report: the results table, the
    HParams sessions and the trials' lines, each once.

    A trial the table has recorded as ended is not recorded again (Ray
    may restart it from an older snapshot; it then reports its result at
    once, see `ray_worker.trainable`).
    """

    @property
    def recorder(self) -> TrialRecorder:
        return _active_recorder()

    def _ended(self, trial) -> bool:
        row = self.recorder.table.rows.get(trial.trial_id)
        return row is not None and row.get("status") in ENDED

    def _values(self, trial) -> dict:
        return {k: trial.config[k] for k in self.recorder.spec.space.keys
                if k in trial.config}

    def on_trial_start(self, iteration, trials, trial, **info):
        if not self._ended(trial):
            self.recorder.start(trial.trial_id, self._values(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self._ended(trial):
            return
        # The trials' own output stays in Ray's logs: their lines (each
        # epoch's among them) are reported from here, in the order Ray
        # receives them.
        for line in result.get("messages") or ():
            self.recorder.report(line)
        # A PBT exploit gives the trial another trial's whole config (and
        # weights): the row shows what the trial now trains.
        space = self.recorder.spec.space
        active = space.active(self._values(trial))
        self.recorder.table.update(
            trial.trial_id, node=result["node"], epochs_run=result["epoch"],
            stopped_epoch=result["epoch"],
            best_objective=result["best_objective"],
            best_epoch=result["best_epoch"],
            final_accuracy_gap=result["accuracy_gap"],
            **{k: active.get(k) for k in space.keys})

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self._ended(trial):
            return
        last = trial.last_result or {}
        if last.get("summary"):
            metrics = RunMetrics.from_dict(last["summary"])
            self.recorder.finish(trial.trial_id, *status_of(metrics),
                                 metrics)
            return
        # Stopped by the scheduler: on_trial_result already recorded its
        # last epoch's figures.
        reason = (f"stopped by the {self.recorder.spec.algorithm} "
                  f"scheduler after epoch {last.get('epoch', 0)}")
        self.recorder.finish(trial.trial_id, Status.STOPPED_EARLY, reason)

    def on_trial_error(self, iteration, trials, trial, **info):
        if not self._ended(trial):
            self.recorder.finish(trial.trial_id, Status.FAILED,
                                 _error_reason(trial))


def _error_reason(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    text = ""
    try:
        text = pathlib.Path(path).read_text() if path else ""
    except OSError:
        pass
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("RuntimeError: ", "ray.exceptions")):
            return line.split(": ", 1)[-1][:300]
    return (lines[-1] if lines else "trial raised")[:300]


class FailureStopper(tune.Stopper):
    """Stops the whole study after `limit` consecutive failed trials (as
    the results table counts them, before a resume too)."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, trial_id, result):
        return False

    def stop_all(self):
        table = _active_recorder().table
        return table.consecutive_failures() >= self.limit


def ended_results(table: ResultsTable, objective: str) -> dict[str, dict]:
    """What each trial the table records as ended reports if Ray runs it
    again, by id (see `ray_worker.trainable`)."""
    ended = {}
    for row in table.rows.values():
        if row.get("status") not in ENDED:
            continue
        epoch = row.get("epochs_run") or 0
        best = row.get("best_objective")
        best = math.nan if best is None else best
        ended[row["trial_id"]] = {"epoch": epoch, "best_objective": best,
                                  "best_epoch": row.get("best_epoch") or 0,
                                  objective: best}
    return ended


def make_trainable(workdir: pathlib.Path, spec: StudySpec,
                   runtime: Runtime, *,
                   trial_function: TrialFunction | None = None,
                   ended: dict[str, dict] | None = None,
                   data: ShippedData | None = None):
    """The study's trainable with its resources, as `tune.Tuner.restore`
    needs it back:

        tune.Tuner.restore(str(workdir / "ray" / "study"), trainable=
                           make_trainable(workdir, spec, runtime))

    `data` (`--ship-data`) goes to the trials through Ray's object store,
    like every parameter here (`tune.with_parameters`).
    """
    fn = tune.with_parameters(trainable, workdir=str(workdir),
                              spec=spec.to_dict(), devices=runtime.devices,
                              trial_function=trial_function,
                              ended=ended or {}, data=data)
    return tune.with_resources(fn, {"cpu": runtime.cpus_per_trial,
                                    "gpu": runtime.gpus_per_trial})


def _quiet_ray() -> None:
    """Keeps Ray's notices about its own bookkeeping off the terminal:
    frequent experiment snapshots (a trial reports every epoch) and, on
    restore, the results of trials that had reported nothing yet."""
    os.environ.setdefault(
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(
        logging.ERROR)
    warnings.filterwarnings("ignore", message="Consider boosting PBT")


def shipped_data(workdir: pathlib.Path, spec: StudySpec,
                 report) -> ShippedData:
    """The study's data as `--ship-data` sends it: its widest cache
    entry's training and validation splits (opened memory-mapped; built
    first if missing)."""
    from data_pipeline.cache import open_vectorized

    widest = spec.widest_data()
    return ShippedData.of(widest, open_vectorized(
        widest, root=StudyDir(workdir).data_cache, report=report))


def _shipped_bytes(shipped: ShippedData | None) -> int:
    """Object store room the shipped data takes (0: none shipped)."""
    return 0 if shipped is None else int(shipped.nbytes * 1.25)


def _check_object_stores(shipped: ShippedData) -> None:
    """Says in one line when a node's object store cannot hold the
    shipped data.

    Raises:
        ConfigError: a node's object store is smaller than the data.
    """
    stores = [n["Resources"].get("object_store_memory", 0)
              for n in ray.nodes() if n["Alive"]]
    needed = _shipped_bytes(shipped)
    if stores and min(stores) < needed:
        raise ConfigError(
            f"--ship-data: the study's data needs {needed / 2**20:,.0f} MiB "
            "of Ray's object store on each node, and a node of the cluster "
            f"has {min(stores) / 2**20:,.0f} MiB; start its nodes with "
            "`ray start --object-store-memory="
            f"{needed + OBJECT_STORE_BYTES}`, or leave --ship-data off "
            "where the nodes share the study's directory")


def _check_resources(runtime: Runtime, *, local: bool, report) -> None:
    """Refuses a trial no node of a local Ray can hold (Ray would wait
    for one forever); on a joined cluster, whose autoscaler may add such a
    node, says so once.

    Raises:
        ConfigError: a local Ray without the GPUs or CPUs one trial asks
            for.
    """
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    for flag, key, asked in (("--gpus-per-trial", "GPU",
                              runtime.gpus_per_trial),
                             ("--cpus-per-trial", "CPU",
                              runtime.cpus_per_trial)):
        largest = max((n.get(key, 0) for n in nodes), default=0)
        if asked > largest:
            problem = (f"{flag} {asked:g}: no node of the Ray cluster has "
                       f"{asked:g} {key}(s) (the largest has {largest:g})")
            if local:
                raise ConfigError(f"{problem}; ask for at most {largest:g}"
                                  + (", or leave --gpus-per-trial out to "
                                     "train on CPUs" if key == "GPU"
                                     else ""))
            report(f"warning: {problem}: trials wait until the cluster "
                   "adds one")


def _connect(address: str | None, num_cpus: int | None = None, *,
             verbose: bool = False,
             shipped_bytes: int = 0) -> None:
    """Starts a local Ray (loopback only), with room in its object store
    for `shipped_bytes` of data besides its own, or joins `address`.

    Unless `verbose`, Ray's own lines (its banner, the workers' output,
    checkpoint notices) stay in its session logs and Tune prints nothing;
    the study reports trials and epochs itself.
    """
    if not verbose:
        _quiet_ray()
    if ray.is_initialized():
        return
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # no escape codes
    if not verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's silent one
    logs = {"log_to_driver": verbose,
            "logging_level": logging.INFO if verbose else logging.WARNING}
    if address:
        ray.init(address=address, **logs)
    else:
        ray.init(address="local", num_cpus=num_cpus,
                 include_dashboard=False,
                 object_store_memory=OBJECT_STORE_BYTES + shipped_bytes,
                 _node_ip_address="127.0.0.1", **logs)


def run(workdir: pathlib.Path, spec: StudySpec, table: ResultsTable,
        progress: Progress, *, resume: bool, runtime: Runtime,
        address: str | None = None, report=print, status=None,
        verbose: bool = False,
        trial_function: TrialFunction | None = None) -> None:
    """Runs (or resumes) the Ray Tune experiment of the study.

    Trials that had ended when a study is resumed stay as they are, even
    if Ray's experiment snapshot (taken every few seconds) is older.

    Args:
        workdir, spec, table, progress: the study, its results table and
            progress line.
        resume: continue the experiment in `workdir/ray/study`.
        runtime: devices and trial packing.
        address: the Ray cluster to join (None: a local Ray).
        report: receives progress lines and the trials' lines.
        status: unused (trials train in Ray's workers, which have no
            terminal); the same signature as the other backend's.
        verbose: let Ray print its own output as well.
        trial_function: what trains each trial (None: the real one).

    Raises:
        StudyFailed: too many consecutive trials failed.
    """
    del status
    shipped = (shipped_data(workdir, spec, report) if runtime.ship_data
               else None)
    _connect(address, verbose=verbose,
             shipped_bytes=_shipped_bytes(shipped))
    if address:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        report(f"joined the Ray cluster at {address} ({len(nodes)} "
               f"node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs)")
    _check_resources(runtime, local=not address, report=report)
    if shipped is not None:
        _check_object_stores(shipped)
        report(f"shipping the study's data to its trials through Ray's "
               f"object store ({shipped.nbytes / 2**20:,.1f} MiB)")
    recorder = TrialRecorder(StudyDir(workdir), spec, table, report=report,
                             on_event=progress)
    experiment = workdir / "ray" / EXPERIMENT
    fn = make_trainable(workdir, spec, runtime,
                        trial_function=trial_function,
                        ended=ended_results(table, spec.objective),
                        data=shipped)
    if resume and tune.Tuner.can_restore(str(experiment)):
        # The callbacks come back from Ray's experiment state.
        tuner = tune.Tuner.restore(str(experiment), trainable=fn,
                                   resume_unfinished=True,
                                   resume_errored=False)
    else:
        from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

        from ray.tune.search import Searcher

        concurrent = runtime.concurrent_trials or 0
        searcher, scheduler, space, samples = search(
            spec, max_concurrent=concurrent)
        tuner = tune.Tuner(
            fn, param_space=space,
            tune_config=tune.TuneConfig(
                metric=spec.objective, mode=spec.mode, num_samples=samples,
                search_alg=searcher, scheduler=scheduler,
                # The variant generator caps itself (`search`).
                max_concurrent_trials=concurrent or None if isinstance(
                    searcher, Searcher) else None),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=str(workdir / "ray"),
                callbacks=[StudyCallback(), CSVLoggerCallback(),
                           JsonLoggerCallback()],
                stop=FailureStopper(spec.max_consecutive_failures),
                failure_config=tune.FailureConfig(max_failures=0),
                # PBT exploits other trials' recent checkpoints.
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=4 if spec.algorithm == "pbt" else 2),
                verbose=1 if verbose else 0))
    stopped = _StopSignal(quiet=not verbose)
    ray_log = logging.getLogger("ray.tune.tune")
    ray_log.addFilter(stopped)
    try:
        with _recording(recorder):
            tuner.fit()
    finally:
        ray_log.removeFilter(stopped)
    failures = ResultsTable(workdir, spec.space).consecutive_failures()
    if failures >= spec.max_consecutive_failures:
        raise StudyFailed(f"{failures} consecutive trials failed (see the "
                          "reason column of trials.csv)")
    if stopped.seen:
        # Ray took the Ctrl-C itself, saved its state and returned: the
        # study is interrupted (resumable), as Keras Tuner's would be.
        raise KeyboardInterrupt


class _StopSignal(logging.Filter):
    """Notes Ray's lines saying it took a stop signal (Ctrl-C) and ended
    the experiment early (`fit` returns as if it had finished); `quiet`
    drops them, and its advice to resume with `Tuner.restore`, since
    rnntune says how to resume."""

    def __init__(self, quiet: bool):
        super().__init__()
        self.quiet, self.seen = quiet, False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Stop signal received"):
            self.seen = True
        elif "Resume experiment with" not in message:
            return True
        return not self.quiet
