"""`rnntune tune` and `rnntune worker`, and the study options that
`submit` passes on to a cluster job."""

import dataclasses
import os
import pathlib
import socket
import sys
from collections.abc import Mapping
from typing import Any

from launch import options
from launch.common import (DEVICES_HELP, NO_CACHE_HELP, UsageError,
                           add_verbose, make_config, quiet_tensorflow, quote,
                           say, status_sink, strategy_from)
from launch.options import option
from tuning.study.spec import Runtime, StudySpec

# Runtime options a cluster job sets itself: `tune` alone takes them.
TUNE_ONLY = ("oracle_host", "oracle_port")


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """A study as the command line gives it: `tune` runs it, `submit`
    renders it back (`argv`) as the arguments of the job's `rnntune tune`.

    Its own options name the base config and the space; `study` holds the
    options of `StudySpec` and `runtime` those of `Runtime` (but
    `TUNE_ONLY`), by field name. Each option is declared once, as a field
    of its class (`launch.options`): the parser, `argv` and the spec
    follow the fields.
    """

    preset: str | None = option(None, help="base configuration of every "
                                "trial")
    overrides: tuple[str, ...] = option(
        (), flag="--set", metavar="KEY=VALUE",
        help="override a base config key (repeatable)")
    smoke: bool = option(False, help="the preset's seconds-long twin")
    no_cache: bool = option(False, help=NO_CACHE_HELP)
    space: str | None = option(
        None, help="a named space (`rnntune spaces`) or a .json / .toml "
        "space file")
    study: Mapping[str, Any] = options.group(StudySpec, required=False)
    runtime: Mapping[str, Any] = options.group(Runtime, exclude=TUNE_ONLY,
                                               unset=True)
    trust_study_dir: bool = option(
        False, help="resume even if other users can write the study's "
        "files (its saved state is loaded, Ray's unpickled)")

    @classmethod
    def from_args(cls, args) -> "StudyOptions":
        return cls(**options.values(args, cls))

    def spec(self, command: str) -> StudySpec:
        """The validated `StudySpec` (no TensorFlow).

        Raises:
            UsageError: a required option is missing.
            ConfigError: a bad preset, override, space or budget.
        """
        from tuning.study.space import get_space

        spec_class = options.group_class(type(self), "study")
        required = [f for f in options.option_fields(spec_class)
                    if f.default is dataclasses.MISSING]
        missing = [f"--{name}" for name in ("preset", "space")
                   if getattr(self, name) is None] + [
            options.flag(f) for f in required
            if self.study.get(f.name) is None]
        if missing:
            raise UsageError(f"{command} needs {', '.join(missing)}"
                             + (" (or --resume to continue a study)"
                                if command == "tune" else ""))
        base = make_config(self.preset, smoke=self.smoke,
                           overrides=self.overrides, no_cache=self.no_cache)
        given = {name: value for name, value in self.study.items()
                 if value is not None}
        seeds = given.get("confirm_seeds")
        if seeds not in (None, spec_class.confirm_seeds) \
                and not given.get("confirm_top"):
            raise UsageError("--confirm-seeds: seeds of the confirmations "
                             "--confirm-top K asks for; give both, or "
                             "neither")
        given.setdefault("max_epochs", base.train.epochs)
        given.setdefault("objective", base.train.objective)
        return spec_class(base=base, space=get_space(self.space), **given)

    def argv(self) -> list[str]:
        """The options as `rnntune tune` arguments, defaults left out."""
        return options.argv(type(self), {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


# Runtime flags that only one backend reads: given to the other, an error.
BACKEND_FLAGS = {"ray": ("ray_address", "cpus_per_trial", "ship_data"),
                 "keras-tuner": ("oracle_host", "oracle_port")}


def check_backend_flags(args, backend: str) -> None:
    for owner, flags in BACKEND_FLAGS.items():
        for flag in flags:
            if owner != backend and getattr(args, flag, None) is not None:
                raise UsageError(
                    f"--{flag.replace('_', '-')} applies to the {owner} "
                    f"backend; this study uses {backend}")


def runtime_from(args):
    """The flags given, over what the study last ran with (on resume)."""
    from tuning.study.spec import load_runtime
    from tuning.trial.devices import parse_devices

    given = {name: value for name, value in options.values(
        args, Runtime).items() if value is not None}
    if args.resume and not given:
        return None
    if "devices" in given:
        parse_devices(given["devices"])
    base = (load_runtime(pathlib.Path(args.workdir)) if args.resume
            else Runtime())
    return dataclasses.replace(base, **given)


def check_resume_flags(args) -> None:
    """`--resume` continues the study as it was saved: an option that
    defines a study given beside it is an error, not ignored.

    Raises:
        UsageError: naming the options given.
    """
    given = StudyOptions.from_args(args)
    flags = [flag for flag, value in (
        ("--preset", given.preset), ("--set", given.overrides),
        ("--smoke", given.smoke), ("--no-cache", given.no_cache),
        ("--space", given.space)) if value]
    for field in options.option_fields(StudySpec):
        value = given.study.get(field.name)
        if value is not None and value != field.default:
            flags.append(options.flag(field))
    if flags:
        raise UsageError(
            f"{', '.join(flags)}: --resume continues the study in "
            f"{args.workdir} as it was saved; to change the steps after "
            "its search (--ensemble, --confirm-top, --confirm-seeds), run "
            "its whole tune command again with the new values")


def cmd_tune(args) -> int:
    from tuning.study.spec import StudyFailed, load_spec

    if args.resume:
        check_resume_flags(args)
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
        best = run_study(args.workdir, spec, resume=args.resume,
                         ray_address=args.ray_address, runtime=runtime,
                         trust_study_dir=args.trust_study_dir, report=say,
                         status=status_sink(), verbose=args.verbose)
    except StudyFailed as e:
        print(f"rnntune: study stopped: {e}", file=sys.stderr)
        return 1
    if best is None:  # every trial failed: their errors are above
        print("rnntune: no trial finished; each trial's error is above "
              f"(and in rnntune report --workdir {quote(args.workdir)})",
              file=sys.stderr)
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
    workdir = pathlib.Path(args.workdir)
    if not workdir.is_dir():
        raise UsageError(f"{workdir}: no such directory; give the study's "
                         "workdir (shared storage)")
    say(f"waiting for the Keras Tuner chief at {host}:{port}")
    # The chief writes the study before it serves: wait for it first.
    try:
        kt_workers.wait_for_chief(host, int(port))
    except TimeoutError as e:
        raise UsageError(f"--oracle {args.oracle}: {e}") from None
    if load_spec(workdir).backend != "keras-tuner":
        raise UsageError(f"{workdir} is a {load_spec(workdir).backend} "
                         "study; workers join keras-tuner studies")
    try:
        kt_workers.check_chief(workdir, int(port))
    except ValueError as e:
        raise UsageError(str(e)) from None
    strategy = strategy_from(args)
    kt_workers.work(workdir, tuner_id=args.tuner_id or (
        f"worker-{socket.gethostname()}-{os.getpid()}"), host=host,
        port=int(port), strategy=strategy, report=say)
    return 0


def add_study_options(p) -> None:
    """The options of a study: `tune` reads them, `submit` passes them on
    to the job's `rnntune tune` (`StudyOptions`)."""
    options.add_options(p, StudyOptions)


def add_commands(sub) -> None:
    p = sub.add_parser(
        "tune", help="search hyperparameters with Keras Tuner or Ray Tune")
    add_study_options(p)
    p.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (HOST:PORT)")
    options.add_options(p, Runtime, unset=True, exclude=tuple(
        f.name for f in options.option_fields(Runtime)
        if f.name not in TUNE_ONLY))
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
