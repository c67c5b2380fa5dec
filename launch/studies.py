"""`rnntune tune` and `rnntune worker`, and the study options that
`submit` passes on to a cluster job."""

import dataclasses
import os
import pathlib
import socket
import sys

from launch.common import (DEVICES_HELP, UsageError, add_verbose,
                           make_config, quiet_tensorflow, say, status_sink,
                           strategy_from)
from tuning.study.spec import ALGORITHMS
from tuning.trial.config import OBJECTIVES


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """A study as the command line gives it: `tune` runs it, `submit`
    renders it back (`argv`) as the arguments of the job's `rnntune tune`.

    Attributes are the options of the same names, `overrides` being the
    `--set` items in order; None leaves an option to its default.
    """

    preset: str | None = None
    overrides: tuple[str, ...] = ()
    smoke: bool = False
    space: str | None = None
    backend: str | None = None
    algorithm: str | None = None
    max_trials: int | None = None
    objective: str = OBJECTIVES[0]
    max_epochs: int | None = None
    max_consecutive_failures: int = 3
    retrain_best: bool = False
    seed: int = 0
    confirm_top: int = 0
    confirm_seeds: int = 3
    devices: str | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    trust_study_dir: bool = False
    concurrent_trials: int | None = None

    @classmethod
    def from_args(cls, args) -> "StudyOptions":
        values = {f.name: getattr(args, f.name)
                  for f in dataclasses.fields(cls) if f.name != "overrides"}
        return cls(overrides=tuple(args.set), **values)

    def spec(self, command: str):
        """The validated `StudySpec` (no TensorFlow).

        Raises:
            UsageError: a required option is missing.
            ConfigError: a bad preset, override, space or budget.
        """
        from tuning.study.space import get_space
        from tuning.study.spec import StudySpec

        missing = [f"--{name.replace('_', '-')}" for name in (
            "preset", "space", "backend", "algorithm", "max_trials")
            if getattr(self, name) is None]
        if missing:
            raise UsageError(f"{command} needs {', '.join(missing)}"
                             + (" (or --resume to continue a study)"
                                if command == "tune" else ""))
        base = make_config(self.preset, smoke=self.smoke,
                           overrides=self.overrides)
        return StudySpec(
            base=base, space=get_space(self.space), backend=self.backend,
            algorithm=self.algorithm, max_trials=self.max_trials,
            objective=self.objective,
            max_epochs=(base.train.epochs if self.max_epochs is None
                        else self.max_epochs),
            max_consecutive_failures=self.max_consecutive_failures,
            retrain_best=self.retrain_best, seed=self.seed,
            confirm_top=self.confirm_top, confirm_seeds=self.confirm_seeds)

    def argv(self) -> list[str]:
        """The options as `rnntune tune` arguments, defaults left out."""
        argv = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            flag = "--" + ("set" if field.name == "overrides"
                           else field.name.replace("_", "-"))
            if field.name == "overrides":
                for item in value:
                    argv += [flag, item]
            elif isinstance(value, bool):
                argv += [flag] if value else []
            elif value is not None and value != field.default:
                argv += [flag, str(value)]
        return argv


# Runtime flags that only one backend reads: given to the other, an error.
BACKEND_FLAGS = {"ray": ("ray_address", "cpus_per_trial"),
                 "keras-tuner": ("oracle_host", "oracle_port")}


def check_backend_flags(args, backend: str) -> None:
    for owner, flags in BACKEND_FLAGS.items():
        for flag in flags:
            if owner != backend and getattr(args, flag, None) is not None:
                raise UsageError(
                    f"--{flag.replace('_', '-')} applies to the {owner} "
                    f"backend; this study uses {backend}")


RUNTIME_FLAGS = ("devices", "gpus_per_trial", "cpus_per_trial",
                 "concurrent_trials", "oracle_host", "oracle_port")


def runtime_from(args):
    """The flags given, over what the study last ran with (on resume)."""
    from tuning.study.spec import Runtime, load_runtime
    from tuning.trial.devices import parse_devices

    given = {f: getattr(args, f) for f in RUNTIME_FLAGS
             if getattr(args, f) is not None}
    if args.resume and not given:
        return None
    if "devices" in given:
        parse_devices(given["devices"])
    base = (load_runtime(pathlib.Path(args.workdir)) if args.resume
            else Runtime())
    return dataclasses.replace(base, **given)


def cmd_tune(args) -> int:
    from tuning.study.spec import StudyFailed, load_spec

    spec = (None if args.resume
            else StudyOptions.from_args(args).spec(args.command))
    check_backend_flags(args, (spec or load_spec(pathlib.Path(
        args.workdir))).backend)
    runtime = runtime_from(args)
    quiet_tensorflow()
    from tuning.trial.workdir import private_umask
    from tuning.tune import run_study

    private_umask()  # what the study writes must pass its resume check
    try:
        run_study(args.workdir, spec, resume=args.resume,
                  ray_address=args.ray_address, runtime=runtime,
                  trust_study_dir=args.trust_study_dir, report=say,
                  status=status_sink(), verbose=args.verbose)
    except StudyFailed as e:
        print(f"rnntune: study stopped: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_worker(args) -> int:
    host, sep, port = args.oracle.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--oracle {args.oracle!r}: expected HOST:PORT")
    from tuning.backends import kt_workers
    from tuning.study.spec import load_spec
    from tuning.trial.workdir import private_umask

    private_umask()  # as the chief's own files
    # The chief writes the study before it serves: wait for it first.
    kt_workers.wait_for_chief(host, int(port))
    workdir = pathlib.Path(args.workdir)
    if load_spec(workdir).backend != "keras-tuner":
        raise UsageError(f"{workdir} is a {load_spec(workdir).backend} "
                         "study; workers join keras-tuner studies")
    strategy = strategy_from(args)
    kt_workers.work(workdir, tuner_id=args.tuner_id or (
        f"worker-{socket.gethostname()}-{os.getpid()}"), host=host,
        port=int(port), strategy=strategy, report=say)
    return 0


def add_study_options(p) -> None:
    """The options of a study: `tune` reads them, `submit` passes them on
    to the job's `rnntune tune` (`StudyOptions`)."""
    p.add_argument("--preset", help="base configuration of every trial")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a base config key")
    p.add_argument("--smoke", action="store_true",
                   help="the preset's seconds-long twin")
    p.add_argument("--space", help="a named space (`rnntune spaces`) or a "
                   ".json / .toml space file")
    p.add_argument("--backend", choices=tuple(ALGORITHMS))
    p.add_argument("--algorithm", help="; ".join(
        f"{backend}: {', '.join(names)}"
        for backend, names in ALGORITHMS.items()))
    p.add_argument("--max-trials", type=int,
                   help="number of trials the study ends with")
    p.add_argument("--objective", default=OBJECTIVES[0],
                   choices=OBJECTIVES)
    p.add_argument("--max-epochs", type=int, default=None,
                   help="epochs per trial (default: the preset's "
                   "train.epochs; train.min_examples_seen does not apply "
                   "to trials)")
    p.add_argument("--max-consecutive-failures", type=int, default=3)
    p.add_argument("--retrain-best", action="store_true",
                   help="retrain the best configuration on train + "
                   "validation before exporting it")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the search algorithm")
    p.add_argument("--confirm-top", type=int, default=0, metavar="K",
                   help="after the search, retrain the K best trials' "
                   "configurations with new seeds and choose best/ by "
                   "their mean (the best of many noisy trials is "
                   "optimistic)")
    p.add_argument("--confirm-seeds", type=int, default=3, metavar="N",
                   help="new seeds per confirmed configuration (default 3)")
    p.add_argument("--devices", default=None,
                   help=DEVICES_HELP + " (each trial's)")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial: Keras Tuner starts one worker per "
                   "group of this many; Ray reserves them (fractions share)")
    p.add_argument("--cpus-per-trial", type=float, default=None,
                   help="CPUs each Ray trial reserves (default 1)")
    p.add_argument("--trust-study-dir", action="store_true",
                   help="resume even if other users can write the study's "
                   "files (its saved state is loaded, Ray's unpickled)")
    p.add_argument("--concurrent-trials", type=int, default=None,
                   help="trials at once (Keras Tuner: CPU workers when no "
                   "GPU)")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "tune", help="search hyperparameters with Keras Tuner or Ray Tune")
    add_study_options(p)
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
    add_verbose(p)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "worker", help="join a running Keras Tuner chief and run trials")
    p.add_argument("--oracle", required=True, metavar="HOST:PORT",
                   help="the chief's address (printed by rnntune tune)")
    p.add_argument("--workdir", required=True,
                   help="the study's workdir (shared storage)")
    p.add_argument("--devices", default="auto", help=DEVICES_HELP)
    p.add_argument("--tuner-id", default=None,
                   help="this worker's id (default: host and pid)")
    add_verbose(p)
    p.set_defaults(func=cmd_worker)
