"""A study's definition: what to search, how, with which budget
(`StudySpec`), and where its trials run (`Runtime`).

A study's workdir:

    study.json          the spec (base config, space, backend, budget)
    runtime.json        where its trials ran last (devices, packing)
    trials.csv, trials.json   one row per trial (`tuning.study.results`)
    trials/<id>/        one trial workdir each (`tuning.trial.train`)
    trials/<id>/logs/   the trial's HParams session and scalars
    logs/               the HParams experiment (`tuning.study.hparams`)
    best/               the chosen trial's model (`tuning.study.export`)
    keras_tuner/ or ray/   the backend's own directory
"""

import dataclasses
import json
import pathlib
from collections.abc import Mapping
from typing import Any, Literal

from data_pipeline.config import DataConfig
from tuning.study import space as space_module
from tuning.study.space import SearchSpace
from tuning.trial.config import (OBJECTIVES, TASK_OBJECTIVES, Config,
                                 ConfigError, from_dict)
from tuning.trial.devices import HELP as DEVICES
from tuning.trial.files import write_json
from tuning.trial.run import StudyDir
from tuning.trial.verdict import minimizes

Backend = Literal["keras-tuner", "ray"]
# Data keys a trial's cache entry is derived for, from the study's widest.
DERIVABLE = ("data.max_tokens", "data.sequence_length")
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "keras-tuner": ("random", "bayesian", "hyperband", "grid"),
    "ray": ("random", "grid", "tpe", "asha", "hyperband", "pbt"),
}

class StudyFailed(RuntimeError):
    """The study stopped: too many consecutive trials failed."""


def _option(default=dataclasses.MISSING, **metadata) -> dataclasses.Field:
    """A field that is also a command-line option (`launch.options`):
    `help`, and `flag`, `metavar`, `choices` or `default_help` where
    needed."""
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """Everything needed to run, and to resume, a study.

    Each field after `base` and `space` is an option of `rnntune tune`,
    declared here once: its help is its documentation, and `to_dict` (the
    `study.json` file), the command line and the scripts that `submit`
    renders all follow the fields. A new option is a new field here.

    Attributes:
        base: the configuration every trial starts from.
        space: what to search.
    """

    base: Config
    space: SearchSpace
    backend: Backend = dataclasses.field(metadata={
        "help": "the search library"})
    algorithm: str = _option(help="the search algorithm; " + "; ".join(
        f"{backend}: {', '.join(names)}"
        for backend, names in ALGORITHMS.items()))
    max_trials: int = _option(help="number of trials the study ends with")
    objective: str = _option(
        "val_accuracy", choices=OBJECTIVES,
        default_help="the preset's train.objective", help="what the search "
        "optimizes: val_accuracy is maximized, val_loss (and a "
        "regression's val_mae, val_rmse) minimized")
    max_epochs: int = _option(
        10, default_help="the preset's train.epochs", help="epochs per "
        "trial, the schedulers' budget; train.min_examples_seen does not "
        "apply to trials")
    max_consecutive_failures: int = _option(
        3, help="stop the study after this many failed trials in a row")
    retrain_best: bool = _option(
        False, help="retrain the best configuration on train + validation "
        "before exporting it")
    seed: int = _option(0, help="seed of the search algorithm")
    confirm_top: int = _option(
        0, metavar="K", help="after the search, retrain the K best trials' "
        "configurations with new seeds and choose best/ by their mean, as "
        "the best of many noisy trials is optimistic; 0: none")
    confirm_seeds: int = _option(
        3, metavar="N", help="new seeds per confirmed configuration")
    ensemble: int = _option(
        0, metavar="K", help="after the search (and any confirmations), "
        "build best/ensemble/: K greedy steps of ensemble selection with "
        "replacement over the best models, averaged; it is the study's "
        "model if it beats the single best on validation; 0: none")

    def __post_init__(self):
        if self.backend not in ALGORITHMS:
            raise ConfigError(f"backend {self.backend!r}: expected one of "
                              f"{', '.join(ALGORITHMS)}")
        if self.algorithm not in ALGORITHMS[self.backend]:
            raise ConfigError(
                f"algorithm {self.algorithm!r} is not one of the "
                f"{self.backend} backend's: "
                f"{', '.join(ALGORITHMS[self.backend])}")
        if self.max_trials < 1:
            raise ConfigError(f"max_trials={self.max_trials}: expected an "
                              "integer >= 1")
        if self.max_epochs < 1:
            raise ConfigError(f"max_epochs={self.max_epochs}: expected an "
                              "integer >= 1")
        task = self.base.data.task
        if self.objective not in TASK_OBJECTIVES[task]:
            raise ConfigError(
                f"objective {self.objective!r}: expected one of "
                f"{', '.join(TASK_OBJECTIVES[task])} for data.task={task}")
        if self.max_consecutive_failures < 1:
            raise ConfigError("max_consecutive_failures: expected an "
                              "integer >= 1")
        if not 0 <= self.confirm_top <= self.max_trials:
            raise ConfigError(
                f"--confirm-top {self.confirm_top}: expected an integer "
                f"from 0 (none) to --max-trials ({self.max_trials})")
        if self.ensemble == 1 or self.ensemble < 0:
            raise ConfigError(f"--ensemble {self.ensemble}: expected 0 "
                              "(none) or an integer >= 2")
        if self.ensemble and self.retrain_best:
            raise ConfigError("--ensemble averages the trials' own models, "
                              "chosen on validation; --retrain-best trains "
                              "on validation too: use one or the other")
        if self.base.data.task == "forecast" and self.ensemble:
            raise ConfigError(
                "--ensemble: not for data.task=forecast (forecasts are "
                "not yet averaged); leave it out")
        if self.confirm_seeds < 1:
            raise ConfigError(f"--confirm-seeds {self.confirm_seeds}: "
                              "expected an integer >= 1")

    @property
    def mode(self) -> str:
        return "min" if minimizes(self.objective) else "max"

    def widest_data(self) -> DataConfig:
        """The base data at the largest vocabulary and length the space
        can ask for: the study's data cache entry, from which every
        trial's is derived (`data_pipeline.cache`)."""
        widest = self.base.data
        for dimension in self.space.dimensions:
            if dimension.key in DERIVABLE:
                name = dimension.key.split(".")[1]
                top = (max(dimension.values) if dimension.kind == "choice"
                       else dimension.high)
                widest = dataclasses.replace(
                    widest, **{name: max(getattr(widest, name), int(top))})
        return widest

    def trial_config(self, values: Mapping[str, Any], *,
                     epochs: int | None = None) -> Config:
        """The config of a trial with these sampled values. It trains the
        epochs the search gives it (`train.min_examples_seen` is the
        single runs' rule; a scheduler's rungs count epochs)."""
        config = self.space.configure(self.base, values)
        return dataclasses.replace(config, train=dataclasses.replace(
            config.train, epochs=epochs or self.max_epochs,
            min_examples_seen=0, objective=self.objective))

    def to_dict(self) -> dict:
        """The `study.json` form: the base config, the space and its name,
        then every other field by name."""
        options = {f.name: getattr(self, f.name)
                   for f in dataclasses.fields(self)
                   if f.name not in ("base", "space")}
        return {"base": self.base.to_dict(), "space": self.space.to_dict(),
                "space_name": self.space.name, **options}

    @classmethod
    def from_dict(cls, data: Mapping) -> "StudySpec":
        """The inverse of `to_dict`; a field the file lacks (a study
        saved before it existed) takes its default."""
        data = dict(data)
        base = from_dict(data.pop("base"))
        space = space_module.from_dict(data.pop("space"),
                                       name=data.pop("space_name"))
        return cls(base=base, space=space, **data)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where a study's trials run: not part of what is searched. Each
    field is an option of `rnntune tune` (given on resume, it replaces
    the saved value; `runtime.json` holds the fields)."""

    devices: str = _option("auto", help=f"each trial's devices: {DEVICES}")
    gpus_per_trial: float = _option(
        0, help="GPUs per trial: Keras Tuner starts one worker per group "
        "of this many; Ray reserves them (fractions share)")
    cpus_per_trial: float = _option(1, help="CPUs each Ray trial reserves")
    concurrent_trials: int | None = _option(
        None, default_help="as many as fit", help="trials at once; Keras "
        "Tuner: CPU workers when no GPU, 0 runs the chief alone and "
        "workers join it with `rnntune worker`")
    oracle_host: str = _option(
        "127.0.0.1", help="where the Keras Tuner chief listens (a worker "
        "on another machine needs an address it can reach)")
    oracle_port: int | None = _option(
        None, default_help="a free one", help="the Keras Tuner chief's "
        "port")
    ship_data: bool = _option(
        False, help="Ray: send the study's vectorized data to every trial "
        "through Ray's object store, for nodes that do not share the "
        "study's file system (default: each trial opens the study's data "
        "cache)")

    def __post_init__(self):
        if self.gpus_per_trial < 0:
            raise ConfigError(f"--gpus-per-trial {self.gpus_per_trial:g}: "
                              "expected a number >= 0")
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"--cpus-per-trial {self.cpus_per_trial:g}: "
                              "expected a number > 0")
        if self.concurrent_trials is not None and self.concurrent_trials < 0:
            raise ConfigError(f"--concurrent-trials "
                              f"{self.concurrent_trials}: expected >= 0 "
                              "(0: a Keras Tuner chief alone)")


def save_runtime(workdir: pathlib.Path, runtime: Runtime) -> None:
    write_json(workdir / StudyDir.RUNTIME, dataclasses.asdict(runtime))


def load_runtime(workdir: pathlib.Path) -> Runtime:
    path = workdir / StudyDir.RUNTIME
    if not path.exists():
        return Runtime()
    return Runtime(**json.loads(path.read_text()))


def save_spec(workdir: pathlib.Path, spec: StudySpec) -> None:
    write_json(workdir / StudyDir.SPEC, spec.to_dict())


def load_spec(workdir: pathlib.Path) -> StudySpec:
    path = workdir / StudyDir.SPEC
    if not path.exists():
        raise ConfigError(f"{workdir}: no study to resume (no study.json)")
    try:
        return StudySpec.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: unreadable study spec ({e})") from None


