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

from tuning.study import space as space_module
from tuning.study.space import SearchSpace
from tuning.trial.config import OBJECTIVES, Config, ConfigError, from_dict
from tuning.trial.files import write_json
from tuning.trial.verdict import minimizes

Backend = Literal["keras-tuner", "ray"]
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "keras-tuner": ("random", "bayesian", "hyperband", "grid"),
    "ray": ("random", "grid", "tpe", "asha", "hyperband", "pbt"),
}

class StudyFailed(RuntimeError):
    """The study stopped: too many consecutive trials failed."""


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """Everything needed to run, and to resume, a study.

    Attributes:
        base: the configuration every trial starts from.
        space: what to search.
        backend: `keras-tuner` or `ray`.
        algorithm: one of `ALGORITHMS[backend]`.
        max_trials: the number of trials the study ends with.
        objective: `val_accuracy` (maximized) or `val_loss` (minimized).
        max_epochs: epochs per trial (the schedulers' budget).
        max_consecutive_failures: stop the study after this many failed
            trials in a row.
        retrain_best: retrain the best configuration on train +
            validation before exporting it.
        seed: seed of the search algorithm.
        confirm_top: after the search, retrain the configurations of the
            this many best trials with `confirm_seeds` new seeds each
            (`tuning.study.confirm`), and choose `best/` by their mean;
            0 for none.
        confirm_seeds: new seeds per confirmed configuration.
    """

    base: Config
    space: SearchSpace
    backend: Backend
    algorithm: str
    max_trials: int
    objective: str = "val_accuracy"
    max_epochs: int = 10
    max_consecutive_failures: int = 3
    retrain_best: bool = False
    seed: int = 0
    confirm_top: int = 0
    confirm_seeds: int = 3

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
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective {self.objective!r}: expected one "
                              f"of {', '.join(OBJECTIVES)}")
        if self.max_consecutive_failures < 1:
            raise ConfigError("max_consecutive_failures: expected an "
                              "integer >= 1")
        if not 0 <= self.confirm_top <= self.max_trials:
            raise ConfigError(
                f"--confirm-top {self.confirm_top}: expected an integer "
                f"from 0 (none) to --max-trials ({self.max_trials})")
        if self.confirm_seeds < 1:
            raise ConfigError(f"--confirm-seeds {self.confirm_seeds}: "
                              "expected an integer >= 1")

    @property
    def mode(self) -> str:
        return "min" if minimizes(self.objective) else "max"

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
        return {
            "base": self.base.to_dict(), "space": self.space.to_dict(),
            "space_name": self.space.name, "backend": self.backend,
            "algorithm": self.algorithm, "max_trials": self.max_trials,
            "objective": self.objective, "max_epochs": self.max_epochs,
            "max_consecutive_failures": self.max_consecutive_failures,
            "retrain_best": self.retrain_best, "seed": self.seed,
            "confirm_top": self.confirm_top,
            "confirm_seeds": self.confirm_seeds,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "StudySpec":
        data = dict(data)
        base = from_dict(data.pop("base"))
        space = space_module.from_dict(data.pop("space"),
                                       name=data.pop("space_name"))
        return cls(base=base, space=space, **data)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where a study's trials run: not part of what is searched.

    Attributes:
        devices: each trial's `--devices` (see `tuning.trial.devices`).
        gpus_per_trial: GPUs each trial gets (Ray: may be fractional).
        cpus_per_trial: CPUs each Ray trial reserves.
        concurrent_trials: trials at once (None: as many as fit). With
            Keras Tuner, 0 runs the chief alone: workers join it with
            `rnntune worker`.
        oracle_host: where the Keras Tuner chief listens.
        oracle_port: its port (None: a free one).
    """

    devices: str = "auto"
    gpus_per_trial: float = 0
    cpus_per_trial: float = 1
    concurrent_trials: int | None = None
    oracle_host: str = "127.0.0.1"
    oracle_port: int | None = None

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
    write_json(workdir / "runtime.json", dataclasses.asdict(runtime))


def load_runtime(workdir: pathlib.Path) -> Runtime:
    path = workdir / "runtime.json"
    if not path.exists():
        return Runtime()
    return Runtime(**json.loads(path.read_text()))


def save_spec(workdir: pathlib.Path, spec: StudySpec) -> None:
    write_json(workdir / "study.json", spec.to_dict())


def load_spec(workdir: pathlib.Path) -> StudySpec:
    path = workdir / "study.json"
    if not path.exists():
        raise ConfigError(f"{workdir}: no study to resume (no study.json)")
    try:
        return StudySpec.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: unreadable study spec ({e})") from None


