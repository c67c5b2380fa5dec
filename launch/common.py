"""What every command shares: the user-error types, the options of a run,
and small helpers (no TensorFlow here)."""

import os
import pathlib
import shlex

from data_pipeline.config import DataError
from launch.k8s import ManifestError
from launch.presets import get_preset
from launch.slurm import SubmitError
from launch.terminal import TERMINAL
from tuning.trial.config import (Config, ConfigError, WorkdirError,
                                 apply_overrides)
from tuning.trial.devices import HELP as DEVICES_HELP


class UsageError(ValueError):
    """A command-line mistake outside the config (a user error)."""


USER_ERRORS = (ConfigError, DataError, WorkdirError, SubmitError,
               ManifestError, UsageError)

# Config keys that name files: made absolute where the command line reads
# them, since trials (Ray's) and jobs (SLURM's) run in other directories.
PATH_KEYS = ("data.path", "data.test_path", "data.cache_dir",
             "model.pretrained_embeddings")


def quote(path) -> str:
    """A path as a shell word, for hints meant to be pasted."""
    return shlex.quote(str(path))


def say(line: str) -> None:
    TERMINAL.say(line)


def status_sink():
    """Where a run's live progress goes: the terminal, or None."""
    return TERMINAL.status_sink()


def path_override(item: str) -> str | None:
    """The path a `--set KEY=VALUE` names, if KEY is one of `PATH_KEYS`
    and VALUE is not empty or none; else None."""
    key, _, value = item.partition("=")
    value = value.strip()
    if key.strip() in PATH_KEYS and value and value.lower() not in (
            "none", "null"):
        return value
    return None


def absolute_paths(args) -> None:
    """Makes the file paths among the options absolute, in place."""
    def absolute(item: str) -> str:
        path = path_override(item)
        if path is None:
            return item
        key = item.partition("=")[0]
        return f"{key}={os.path.abspath(os.path.expanduser(path))}"

    if getattr(args, "set", None):
        args.set = [absolute(item) for item in args.set]
    space = getattr(args, "space", None)
    if space and space.endswith((".json", ".toml")):
        args.space = os.path.abspath(os.path.expanduser(space))


def quiet_tensorflow() -> None:
    # Before TensorFlow loads: its C++ start-up lines are noise to users.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


NO_CACHE_HELP = ("read and vectorize the data in this process instead of "
                 "the data cache (data.cache=false)")


def make_config(preset: str, *, smoke: bool, overrides,
                no_cache: bool = False) -> Config:
    """The preset (or its smoke twin) with the `--set` overrides (and
    `data.cache=false` with `--no-cache`)."""
    overrides = [*overrides, *(["data.cache=false"] if no_cache else [])]
    return apply_overrides(get_preset(preset, smoke=smoke), overrides)


def strategy_from(args):
    """The distribution strategy over `--devices` (configures TensorFlow:
    call it before anything runs a TensorFlow op)."""
    from tuning.trial.devices import make_strategy, parse_devices

    devices = parse_devices(args.devices)  # a bad flag fails before TF
    quiet_tensorflow()
    return make_strategy(devices)


def existing_dir(text: str) -> pathlib.Path:
    path = pathlib.Path(text)
    if not path.is_dir():
        raise UsageError(f"{path}: " + ("a file, not a directory"
                                        if path.exists()
                                        else "no such directory"))
    return path


def add_verbose(parser) -> None:
    """--verbose, for the commands that run TensorFlow or Ray."""
    parser.add_argument(
        "--verbose", action="store_true",
        help="show the libraries' own output too (TensorFlow's start-up "
        "lines, Ray's reports and its workers' output)")


def add_config_options(parser, *, default_preset: str | None) -> None:
    """--preset, --set, --smoke, --workdir and --devices of one run."""
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
    parser.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    parser.add_argument("--workdir", required=True,
                        help="directory of the run (resumes if it exists)")
    parser.add_argument("--devices", default="auto", help=DEVICES_HELP)
    add_verbose(parser)
