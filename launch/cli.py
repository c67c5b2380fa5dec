"""rnntune: train, compare and inspect recurrent text models.

    rnntune compare --preset smoke --workdir runs/first
    rnntune train --preset imdb --set model.cell=lstm --workdir runs/lstm
    rnntune tune --preset smoke --space tiny --backend keras-tuner \\
        --algorithm random --max-trials 4 --workdir runs/study
    rnntune predict --model runs/lstm/model.keras "A wonderful film."
    rnntune tensorboard --workdir runs/first
    rnntune presets

Configuration comes from a preset and `--set section.key=value` overrides
(`rnntune presets --keys` lists every key). User mistakes (a bad key, a
missing file, an unreadable data set) print one line and exit with status 2.
"""

import argparse
import os
import pathlib
import shlex
import socket
import sys
from collections.abc import Sequence

from data_pipeline.sources import DataError
from launch.k8s import ManifestError
from launch.presets import PRESETS, get_preset
from launch.slurm import SubmitError
from models.config import CELL_NAMES
from tuning.trial.config import (Config, ConfigError, WorkdirError,
                           apply_overrides, keys)

USER_ERRORS = (ConfigError, DataError, WorkdirError, SubmitError,
               ManifestError)
DEVICES_HELP = ("auto (mirror across all GPUs if two or more), gpu:all, "
                "gpu:0,1, cpu, or cpu:N (N logical CPU devices, mirrored)")
EXIT_USAGE = 2


class UsageError(ValueError):
    """A command-line mistake outside the config (a user error)."""


class Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line, as every user error is."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"rnntune: error: {message} (see "
                  f"{self.prog} --help)\n")


def _quote(path) -> str:
    """A path as a shell word, for hints meant to be pasted."""
    return shlex.quote(str(path))


# Config keys that name files: made absolute where the command line reads
# them, since trials (Ray's) and jobs (SLURM's) run in other directories.
PATH_KEYS = ("data.path", "data.cache_dir")


def _absolute_paths(args) -> None:
    def absolute(item: str) -> str:
        key, sep, value = item.partition("=")
        if key.strip() in PATH_KEYS and value.strip() and value.strip(
                ).lower() not in ("none", "null"):
            value = os.path.abspath(os.path.expanduser(value.strip()))
        return f"{key}{sep}{value}"

    if getattr(args, "set", None):
        args.set = [absolute(item) for item in args.set]
    space = getattr(args, "space", None)
    if space and space.endswith((".json", ".toml")):
        args.space = os.path.abspath(os.path.expanduser(space))


def _quiet_tensorflow() -> None:
    # Before TensorFlow loads: its C++ start-up lines are noise to users.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _config(args) -> Config:
    config = get_preset(args.preset, smoke=args.smoke)
    return apply_overrides(config, args.set)


def _say(line: str) -> None:
    print(line, flush=True)


def _strategy(args):
    from tuning.trial.devices import make_strategy, parse_devices

    devices = parse_devices(args.devices)  # a bad flag fails before TF
    _quiet_tensorflow()
    return make_strategy(devices)


def cmd_train(args) -> int:
    config = _config(args)
    strategy = _strategy(args)
    from tuning.trial.train import describe, train_and_evaluate
    from tuning.trial.workdir import hold

    with hold(args.workdir, kind="run"):
        metrics = train_and_evaluate(config, args.workdir,
                                     strategy=strategy, report=_say)
    _say(f"{args.workdir}: {describe(metrics)}")
    if metrics["status"] == "completed":
        _say(f"model: {_quote(pathlib.Path(args.workdir) / 'model.keras')}")
    return 0 if metrics["status"] == "completed" else 1


def _parse_cells(text: str) -> list[str]:
    cells = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELL_NAMES]
    if unknown or not cells:
        raise UsageError(
            f"--cells {text!r}: expected a comma-separated list of "
            f"{', '.join(CELL_NAMES)}")
    if len(set(cells)) != len(cells):
        raise UsageError(f"--cells {text!r}: a cell is listed twice")
    return cells


def cmd_compare(args) -> int:
    config = _config(args)
    cells = _parse_cells(args.cells)
    strategy = _strategy(args)
    from tuning.compare import compare_cells, format_comparison

    rows = compare_cells(config, cells, args.workdir, strategy=strategy,
                         report=_say)
    workdir = pathlib.Path(args.workdir)
    _say("")
    _say(format_comparison(rows))
    _say(f"table: {_quote(workdir / 'comparison.csv')}, "
         f"{_quote(workdir / 'comparison.json')}; curves: "
         f"{_quote(workdir / 'curves_<cell>.png')}")
    _say(f"tensorboard: rnntune tensorboard --workdir {_quote(workdir)}")
    return 0


def _study_spec(args):
    """The study the options describe (validated; no TensorFlow)."""
    from tuning.study.space import get_space
    from tuning.study.spec import StudySpec

    missing = [flag for flag, value in (
        ("--preset", args.preset), ("--space", args.space),
        ("--backend", args.backend), ("--algorithm", args.algorithm),
        ("--max-trials", args.max_trials)) if value is None]
    if missing:
        raise UsageError(f"{args.command} needs {', '.join(missing)}"
                         + (" (or --resume to continue a study)"
                            if args.command == "tune" else ""))
    base = _config(args)
    return StudySpec(
        base=base, space=get_space(args.space), backend=args.backend,
        algorithm=args.algorithm, max_trials=args.max_trials,
        objective=args.objective,
        max_epochs=(base.train.epochs if args.max_epochs is None
                    else args.max_epochs),
        max_consecutive_failures=args.max_consecutive_failures,
        retrain_best=args.retrain_best, seed=args.seed)


def cmd_tune(args) -> int:
    from tuning.study.spec import StudyFailed

    spec = None if args.resume else _study_spec(args)
    _check_backend_flags(args, spec)
    runtime = _runtime(args)
    _quiet_tensorflow()
    from tuning.tune import run_study
    from tuning.trial.workdir import private_umask

    private_umask()  # what the study writes must pass its resume check

    try:
        run_study(args.workdir, spec, resume=args.resume,
                  ray_address=args.ray_address, runtime=runtime,
                  trust_study_dir=args.trust_study_dir, report=_say)
    except StudyFailed as e:
        print(f"rnntune: study stopped: {e}", file=sys.stderr)
        return 1
    return 0


# Runtime flags that only one backend reads: given to the other, an error.
BACKEND_FLAGS = {"ray": ("ray_address", "cpus_per_trial"),
                 "keras-tuner": ("oracle_host", "oracle_port")}


def _check_backend_flags(args, spec) -> None:
    from tuning.study.spec import load_spec

    backend = (spec or load_spec(pathlib.Path(args.workdir))).backend
    for owner, flags in BACKEND_FLAGS.items():
        for flag in flags:
            if owner != backend and getattr(args, flag, None) is not None:
                raise UsageError(
                    f"--{flag.replace('_', '-')} applies to the {owner} "
                    f"backend; this study uses {backend}")


RUNTIME_FLAGS = ("devices", "gpus_per_trial", "cpus_per_trial",
                 "concurrent_trials", "oracle_host", "oracle_port")


def _runtime(args):
    """The flags given, over what the study last ran with (on resume)."""
    import dataclasses

    from tuning.trial.devices import parse_devices
    from tuning.study.spec import Runtime, load_runtime

    given = {f: getattr(args, f) for f in RUNTIME_FLAGS
             if getattr(args, f) is not None}
    if args.resume and not given:
        return None
    if "devices" in given:
        parse_devices(given["devices"])
    base = (load_runtime(pathlib.Path(args.workdir)) if args.resume
            else Runtime())
    return dataclasses.replace(base, **given)


def cmd_worker(args) -> int:
    host, sep, port = args.oracle.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--oracle {args.oracle!r}: expected HOST:PORT")
    from tuning.backends import kt_workers
    from tuning.study.progress import Progress
    from tuning.study.results import ResultsTable
    from tuning.study.spec import load_spec
    from tuning.trial.workdir import private_umask

    private_umask()  # as the chief's own files

    # The chief writes the study before it serves: wait for it first.
    kt_workers.wait_for_chief(host, int(port))
    workdir = pathlib.Path(args.workdir)
    spec = load_spec(workdir)
    if spec.backend != "keras-tuner":
        raise UsageError(f"{workdir} is a {spec.backend} study; workers "
                         "join keras-tuner studies")
    strategy = _strategy(args)
    from tuning.backends import keras_tuner
    from tuning.study.runner import TrialRunner

    tuner_id = args.tuner_id or (
        f"worker-{socket.gethostname()}-{os.getpid()}")
    kt_workers.set_env(tuner_id, host, int(port))
    table = ResultsTable(workdir, spec.space)
    runner = TrialRunner(workdir, spec, table, report=_say,
                         on_event=Progress(spec, table, _say),
                         strategy=strategy)
    keras_tuner.run(workdir, runner)
    return 0


def cmd_submit_slurm(args) -> int:
    from launch.slurm import SlurmSpec, render

    spec = _study_spec(args)
    _check_backend_flags(args, spec)
    if args.mode != "single" and spec.backend != args.mode:
        raise UsageError(f"--mode {args.mode} runs a {args.mode} study; got "
                         f"--backend {spec.backend}")
    workdir = pathlib.Path(args.workdir).absolute()
    slurm = SlurmSpec(
        mode=args.mode, workdir=str(workdir), python=args.python,
        tune_args=tuple(_study_argv(args)), job_name=args.job_name,
        nodes=args.nodes, gpus_per_node=args.gpus_per_node,
        cpus_per_gpu=args.cpus_per_gpu, cpus=args.cpus, mem=args.mem,
        time=args.time, partition=args.partition, account=args.account,
        gpus_per_trial=max(1, int(args.gpus_per_trial or 1)),
        workers_per_node=args.workers_per_node,
        signal_seconds=args.signal_seconds, head_address=args.head_address,
        extra_sbatch=tuple(_pairs(args.extra_sbatch, "--extra-sbatch")))
    script = render(slurm)
    (workdir / "slurm").mkdir(parents=True, exist_ok=True)
    path = workdir / "slurm" / f"{_safe_name(args.job_name)}.sbatch"
    path.write_text(script)
    if args.dry_run:
        print(script, end="")
        print(f"# written to {_quote(path)}; submit it with: sbatch "
              f"{_quote(path)}", file=sys.stderr)
        return 0
    import shutil
    import subprocess

    if shutil.which("sbatch") is None:
        raise UsageError("sbatch not found: run this on a SLURM login node, "
                         f"or pass --dry-run (the script is in "
                         f"{_quote(path)})")
    done = subprocess.run(["sbatch", "--parsable", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"sbatch refused {path}: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    job = done.stdout.strip().split(";")[0]
    log = workdir / "slurm" / f"{args.job_name}-{job}.out"
    print(f"submitted job {job}: {_quote(path)}")
    print(f"  follow it:   squeue -j {job}")
    print(f"  its log:     {_quote(log)}")
    print(f"  TensorBoard: rnntune tensorboard --workdir {_quote(workdir)}")
    return 0


def cmd_submit_k8s(args) -> int:
    from launch.k8s import RayJobSpec, render

    spec = _study_spec(args)
    _check_backend_flags(args, spec)
    if spec.backend != "ray":
        raise UsageError("a RayJob runs a ray study; got --backend "
                         f"{spec.backend}")
    if not args.dry_run:
        raise UsageError("submit k8s renders the manifest only: pass "
                         "--dry-run and apply it with `kubectl apply -f -`")
    print(render(RayJobSpec(
        name=args.name, image=args.image, tune_args=tuple(_study_argv(args)),
        workdir=args.workdir, namespace=args.namespace, workers=args.workers,
        gpus_per_worker=args.gpus_per_worker, cpus=args.cpus,
        memory=args.memory, volume_claim=args.volume_claim,
        ray_version=args.ray_version)), end="")
    return 0


def _pairs(items, flag) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE, e.g. "
                             "qos=high")
        pairs.append((key, value))
    return pairs


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def cmd_spaces(args) -> int:
    from tuning.study.space import SPACES, get_space

    width = max(map(len, SPACES))
    for name, (description, _) in SPACES.items():
        print(f"{name.ljust(width)}  {description}")
        if args.verbose:
            for d in get_space(name).dimensions:
                when = (f"  when {d.when[0]} in {list(d.when[1])}"
                        if d.when else "")
                print(f"  {d.key} {d.kind} {d.domain()}{when}")
    return 0


def cmd_report(args) -> int:
    workdir = pathlib.Path(args.workdir)
    if not workdir.is_dir():
        raise UsageError(f"{workdir}: no such directory")
    _quiet_tensorflow()
    from tuning.reporting.report import build_report, format_text, write_outputs

    report = build_report(workdir)
    paths = write_outputs(report, workdir)
    if args.format == "json":
        import json

        print(json.dumps(report, indent=2))
    elif args.format == "html":
        print(paths["html"])
    else:
        print(format_text(report))
        print(f"\nreport: {_quote(paths['html'])} (and report.json, PNGs "
              "beside it)")
    return 0


def _read_texts(args) -> list[str]:
    if args.file:
        path = pathlib.Path(args.file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text") from None
    elif args.texts and args.texts != ["-"]:
        lines = args.texts
    else:
        stream = getattr(sys.stdin, "buffer", None)  # None: a text stream
        try:
            lines = (stream.read().decode("utf-8") if stream
                     else sys.stdin.read()).splitlines()
        except UnicodeDecodeError as e:
            raise UsageError(f"standard input: not UTF-8 text (byte "
                             f"{e.start}); convert it to UTF-8") from None
    texts = [t for t in lines if t.strip()]
    if not texts:
        raise UsageError("no text to predict: pass texts, --file FILE, or "
                         "lines on standard input")
    return texts


def cmd_predict(args) -> int:
    model_path = pathlib.Path(args.model)
    if not model_path.is_file():
        raise UsageError(f"{model_path}: no such model file")
    texts = _read_texts(args)
    labels_path = model_path.with_name("labels.txt")
    _quiet_tensorflow()
    import numpy as np

    model = _load_model(model_path)
    probs = model.predict(np.asarray(texts, dtype=object), verbose=0)
    names = (labels_path.read_text(encoding="utf-8").split()
             if labels_path.exists() else None)
    for text, p in zip(texts, probs):
        if p.shape[-1] == 1:
            index = int(p[0] >= 0.5)
            prob = float(p[0] if index else 1 - p[0])
        else:
            index = int(np.argmax(p))
            prob = float(p[index])
        label = names[index] if names else str(index)
        short = text if len(text) <= 60 else text[:57] + "..."
        print(f"{label}\t{prob:.4f}\t{short}")
    return 0


def _load_model(path: pathlib.Path):
    import keras

    import data_pipeline.text  # noqa: F401  registers the standardizer

    try:
        return keras.models.load_model(path)
    except Exception as e:  # any file a user names: say why, one line
        text = " ".join(str(e).split())
        if "Lambda" in text and "safe_mode" in text:
            raise UsageError(
                f"{path}: holds a Lambda layer (Python code), which safe "
                "mode refuses to load; if you trust the file, load it with "
                "keras.models.load_model(path, safe_mode=False)") from None
        raise UsageError(f"{path}: not a loadable Keras model "
                         f"({type(e).__name__}: {text[:200]})") from None


def cmd_tensorboard(args) -> int:
    workdir = pathlib.Path(args.workdir)
    if not workdir.is_dir():
        raise UsageError(f"{workdir}: no such directory")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected a port number "
                         "from 1 to 65535")
    command = [sys.executable, "-m", "tensorboard.main", "--logdir",
               str(workdir), "--host", args.host, "--port", str(args.port)]
    _say(f"TensorBoard for {workdir} at http://{args.host}:{args.port}/ "
         "(Ctrl-C stops it)")
    _quiet_tensorflow()
    # Become TensorBoard, so that signals reach it directly.
    os.execv(sys.executable, command)


def cmd_presets(args) -> int:
    if args.keys:
        defaults = Config().flat()
        for key in keys():
            print(f"{key} = {defaults[key]!r}")
        return 0
    width = max(map(len, PRESETS))
    for name, (description, _) in PRESETS.items():
        print(f"{name.ljust(width)}  {description}")
    return 0


def _add_config_options(parser, *, default_preset: str | None) -> None:
    parser.add_argument(
        "--preset", default=default_preset, required=default_preset is None,
        help="named configuration (see `rnntune presets`)"
             + (f"; default {default_preset}" if default_preset else ""))
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. model.units=128 (repeatable)")
    parser.add_argument(
        "--smoke", action="store_true",
        help="the preset's seconds-long twin: tiny data, model and epochs")
    parser.add_argument("--workdir", required=True,
                        help="directory of the run (resumes if it exists)")
    parser.add_argument("--devices", default="auto",
                        help=DEVICES_HELP)


def _add_study_options(p) -> None:
    """The options of a study: `tune` reads them, `submit` passes them on
    to the job's `rnntune tune`."""
    actions = []

    def add(*flags, **kwargs):
        actions.append(p.add_argument(*flags, **kwargs))

    add("--preset", help="base configuration of every trial")
    add("--set", action="append", default=[],
                   metavar="KEY=VALUE", help="override a base config key")
    add("--smoke", action="store_true",
                   help="the preset's seconds-long twin")
    add("--space", help="a named space (`rnntune spaces`) or a "
                   ".json / .toml space file")
    add("--backend", choices=("keras-tuner", "ray"))
    add("--algorithm", help="keras-tuner: random, bayesian, "
                   "hyperband, grid; ray: random, grid, tpe, asha, "
                   "hyperband, pbt")
    add("--max-trials", type=int,
                   help="number of trials the study ends with")
    add("--objective", default="val_accuracy",
                   choices=("val_accuracy", "val_loss"))
    add("--max-epochs", type=int, default=None,
                   help="epochs per trial (default: the preset's)")
    add("--max-consecutive-failures", type=int, default=3)
    add("--retrain-best", action="store_true",
                   help="retrain the best configuration on train + "
                   "validation before exporting it")
    add("--seed", type=int, default=0,
                   help="seed of the search algorithm")
    add("--devices", default=None,
                   help=DEVICES_HELP + " (each trial's)")
    add("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial: Keras Tuner starts one worker per "
                   "group of this many; Ray reserves them (fractions share)")
    add("--cpus-per-trial", type=float, default=None,
                   help="CPUs each Ray trial reserves (default 1)")
    add("--trust-study-dir", action="store_true",
        help="resume even if other users can write the study's files "
        "(its saved state is loaded, Ray's unpickled)")
    add("--concurrent-trials", type=int, default=None,
                   help="trials at once (Keras Tuner: CPU workers when no "
                   "GPU)")
    p.set_defaults(study_actions=actions)


def _study_argv(args) -> list[str]:
    """The study options given, as `rnntune tune` arguments again."""
    argv = []
    for action in args.study_actions:
        flag, value = action.option_strings[0], getattr(args, action.dest)
        if isinstance(action, argparse._StoreTrueAction):
            argv += [flag] if value else []
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [flag, item]
        elif value is not None and value != action.default:
            argv += [flag, str(value)]
    return argv

def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnntune",
        description="Train, compare and tune recurrent text models.")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="COMMAND")

    p = sub.add_parser("train", help="train one model")
    _add_config_options(p, default_preset=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "compare", help="train every cell type on the same data and "
        "compare them for overfitting")
    _add_config_options(p, default_preset="seed")
    p.add_argument("--cells", default=",".join(CELL_NAMES),
                   help="comma-separated cell types; default all")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "tune", help="search hyperparameters with Keras Tuner or Ray Tune")
    _add_study_options(p)
    p.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (HOST:PORT)")
    p.add_argument("--oracle-host", default=None,
                   help="where the Keras Tuner chief listens (default "
                   "127.0.0.1; a worker on another machine needs an "
                   "address it can reach)")
    p.add_argument("--oracle-port", type=int, default=None,
                   help="the Keras Tuner chief's port (default: a free one)")
    p.add_argument("--resume", action="store_true",
                   help="continue the study in --workdir")
    p.add_argument("--workdir", required=True)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "report", help="which runs overfit, from when, and which settings "
        "go with it")
    p.add_argument("--workdir", required=True,
                   help="what train, compare or tune wrote")
    p.add_argument("--format", choices=("text", "html", "json"),
                   default="text", help="what to print (every format is "
                   "written under WORKDIR/report/)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "worker", help="join a running Keras Tuner chief and run trials")
    p.add_argument("--oracle", required=True, metavar="HOST:PORT",
                   help="the chief's address (printed by rnntune tune)")
    p.add_argument("--workdir", required=True,
                   help="the study's workdir (shared storage)")
    p.add_argument("--devices", default="auto", help=DEVICES_HELP)
    p.add_argument("--tuner-id", default=None,
                   help="this worker's id (default: host and pid)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("submit", help="submit a study to a cluster")
    clusters = p.add_subparsers(dest="cluster", required=True,
                                metavar="CLUSTER")
    p = clusters.add_parser(
        "slurm", help="write (and sbatch) a SLURM script for the study")
    p.add_argument("--mode", required=True,
                   choices=("single", "keras-tuner", "ray"),
                   help="single: one node; keras-tuner: chief and srun "
                   "workers; ray: a Ray cluster inside the allocation")
    _add_study_options(p)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=0)
    p.add_argument("--cpus-per-gpu", type=int, default=4)
    p.add_argument("--cpus", type=int, default=4,
                   help="CPUs per node when there are no GPUs")
    p.add_argument("--mem", default="16G", help="memory per node")
    p.add_argument("--time", default="04:00:00",
                   help="time limit, e.g. 04:00:00 or 1-12:00:00")
    p.add_argument("--partition")
    p.add_argument("--account")
    p.add_argument("--job-name", default="rnntune")
    p.add_argument("--workers-per-node", type=int, default=1,
                   help="keras-tuner mode without GPUs: workers per node")
    p.add_argument("--signal-seconds", type=int, default=120,
                   help="stop and requeue this long before the time limit")
    p.add_argument("--head-address", default=None,
                   help="address the chief / Ray head binds (default: the "
                   "first node's hostname)")
    p.add_argument("--extra-sbatch", action="append", default=[],
                   metavar="KEY=VALUE", help="another #SBATCH --KEY=VALUE")
    p.add_argument("--python", default=sys.executable,
                   help="the interpreter the job runs (absolute path)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the script (it is written either way)")
    p.add_argument("--workdir", required=True)
    p.set_defaults(func=cmd_submit_slurm)

    p = clusters.add_parser(
        "k8s", help="render a KubeRay RayJob manifest for the study")
    _add_study_options(p)
    p.add_argument("--name", required=True, help="the RayJob's name")
    p.add_argument("--image", required=True,
                   help="an image with rnntune and Ray installed")
    p.add_argument("--namespace", default="default")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--gpus-per-worker", type=int, default=1)
    p.add_argument("--cpus", type=int, default=8)
    p.add_argument("--memory", default="32Gi")
    p.add_argument("--volume-claim", default=None,
                   help="a PersistentVolumeClaim holding the workdir")
    p.add_argument("--ray-version", default="2.40.0")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--workdir", default="/data/study",
                   help="the workdir inside the containers")
    p.set_defaults(func=cmd_submit_k8s)

    p = sub.add_parser("spaces", help="list the named search spaces")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="show every dimension")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("predict", help="label raw texts with a saved model")
    p.add_argument("--model", required=True, help="a run's model.keras")
    p.add_argument("--file", help="read texts from FILE, one per line")
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="texts to label; none or '-' reads standard input")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("tensorboard", help="serve TensorBoard for a workdir")
    p.add_argument("--workdir", required=True)
    p.add_argument("--port", type=int, default=6006)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; default loopback only")
    p.set_defaults(func=cmd_tensorboard)

    p = sub.add_parser("presets", help="list the presets")
    p.add_argument("--keys", action="store_true",
                   help="list every config key with its default instead")
    p.set_defaults(func=cmd_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "cluster", None) != "k8s":  # k8s paths are the pods'
        _absolute_paths(args)
    try:
        return args.func(args)
    except (*USER_ERRORS, UsageError) as e:
        print(f"rnntune: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        if e.filename is None:
            raise
        # A file the user named or the file system refused (permissions,
        # a full disk): one line, as for the other user errors.
        print(f"rnntune: error: {e.filename}: {e.strerror}",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnntune: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130
