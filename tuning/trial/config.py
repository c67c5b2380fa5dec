"""The whole configuration of a run, strict and typed (no TensorFlow here).

A `Config` has three sections named by owner: `data` (data_pipeline),
`model` (models) and `train` (the trial). Keys are dotted, `model.units`,
and one override path serves the command line and the tuners alike:

    config = apply_overrides(Config(), ["model.cell=gru", "train.epochs=3"])
    config = apply_overrides(config, {"model.units": 128})
"""

import dataclasses
import math
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from data_pipeline.config import CACHE_FIELDS, DataConfig
from models.config import ModelConfig

Optimizer = Literal["adam", "rmsprop", "sgd"]
Objective = Literal["val_accuracy", "val_loss", "val_mae", "val_rmse"]
Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
Schedule = Literal["constant", "cosine", "plateau"]
SCHEDULES: tuple[str, ...] = typing.get_args(Schedule)
OPTIMIZER_NAMES: tuple[str, ...] = typing.get_args(Optimizer)
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
OBJECTIVES: tuple[str, ...] = typing.get_args(Objective)
# The objectives each `data.task` records (a regression has no accuracy, a
# classification no errors).
TASK_OBJECTIVES = {"classification": ("val_accuracy", "val_loss"),
                   "regression": ("val_loss", "val_mae", "val_rmse"),
                   "forecast": ("val_loss", "val_mae")}


class ConfigError(ValueError):
    """An unknown key, a wrong type or an impossible value (a user error)."""


class WorkdirError(ValueError):
    """A workdir that holds a run of another config (a user error)."""


def _require(ok: bool, key: str, value, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r}: expected {accepted}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model trains.

    Attributes:
        epochs: maximum number of epochs.
        min_examples_seen: train at least this many examples' worth
            (epochs x training texts): a corpus too small for `epochs` to
            reach it gets more epochs, `ceil(min_examples_seen / texts)`,
            so a preset sized for a large corpus still learns on a few
            thousand texts (early stopping and the cosine schedule follow
            the larger count). 0 for exactly `epochs`. A study's trials
            train the epochs the search gives them instead.
        batch_size: examples per step on each replica; the global batch is
            this times the number of replicas.
        learning_rate: optimizer step size.
        optimizer: one of adam, rmsprop, sgd.
        weight_decay: decoupled weight decay (Loshchilov & Hutter): each
            step shrinks every weight but the biases by `learning_rate *
            weight_decay`; with adam this is AdamW. 0 for none.
        clipnorm: clip each gradient to this L2 norm before the step (a
            guard against the exploding gradients of recurrent nets); 0
            for none.
        label_smoothing: train against targets moved this far towards the
            uniform distribution (`1 - s + s / classes` for the true
            class), which keeps the model from growing over-confident; 0
            for none. Metrics use the true labels.
        lr_schedule: `constant`; `cosine`, decaying from `learning_rate`
            to 0 along a half cosine over `epochs` epochs, step by step;
            or `plateau`, halving the rate whenever the objective has not
            improved for an epoch (decided from `history.csv`, so a
            resumed run takes up the same rate).
        objective: the validation metric that picks the best epoch (and
            drives early stopping): `val_accuracy` or `val_loss` for a
            classification; `val_loss` (mean squared error), `val_mae` or
            `val_rmse` for a regression.
        early_stopping_patience: stop after this many epochs without a
            better objective; 0 trains all epochs.
        restore_best_weights: end with the best epoch's weights rather than
            the last's.
        scale_learning_rate: multiply the learning rate by the number of
            replicas (the global batch grows with them).
        precision: `float32`, or a Keras mixed policy: `mixed_float16`
            (GPUs with tensor cores; the loss is scaled so small gradients
            survive) or `mixed_bfloat16` (recent GPUs and TPUs). The
            output layer computes in float32 either way.
        seed: seed of weight initialization.
    """

    epochs: int = 10
    min_examples_seen: int = 0
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
    clipnorm: float = 0.0
    label_smoothing: float = 0.0
    lr_schedule: Schedule = "constant"
    objective: Objective = "val_accuracy"
    early_stopping_patience: int = 0
    restore_best_weights: bool = True
    scale_learning_rate: bool = False
    precision: Precision = "float32"
    seed: int = 123

    def __post_init__(self):
        _require(self.epochs >= 1, "epochs", self.epochs, "an integer >= 1")
        _require(self.min_examples_seen >= 0, "min_examples_seen",
                 self.min_examples_seen, "an integer >= 0 (0 for none)")
        _require(self.batch_size >= 1, "batch_size", self.batch_size,
                 "an integer >= 1")
        _require(self.learning_rate > 0, "learning_rate",
                 self.learning_rate, "a number > 0")
        _require(self.optimizer in OPTIMIZER_NAMES, "optimizer",
                 self.optimizer, f"one of {', '.join(OPTIMIZER_NAMES)}")
        _require(self.weight_decay >= 0, "weight_decay", self.weight_decay,
                 "a number >= 0 (0 for none)")
        _require(self.clipnorm >= 0, "clipnorm", self.clipnorm,
                 "a number >= 0 (0 for no clipping)")
        _require(0 <= self.label_smoothing < 0.5, "label_smoothing",
                 self.label_smoothing, "a number in [0, 0.5)")
        _require(self.lr_schedule in SCHEDULES, "lr_schedule",
                 self.lr_schedule, f"one of {', '.join(SCHEDULES)}")
        _require(self.objective in OBJECTIVES, "objective",
                 self.objective, f"one of {', '.join(OBJECTIVES)}")
        _require(self.precision in PRECISIONS, "precision", self.precision,
                 f"one of {', '.join(PRECISIONS)}")
        _require(self.early_stopping_patience >= 0,
                 "early_stopping_patience", self.early_stopping_patience,
                 "an integer >= 0 (0 disables early stopping)")

    def epochs_for(self, train_examples: int) -> int:
        """The epochs to train on `train_examples` texts: `epochs`, or
        more where `min_examples_seen` asks for them."""
        if not self.min_examples_seen or train_examples < 1:
            return self.epochs
        return max(self.epochs,
                   math.ceil(self.min_examples_seen / train_examples))


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
}


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def __post_init__(self):
        task, objective = self.data.task, self.train.objective
        accepted = TASK_OBJECTIVES[task]
        if objective not in accepted:
            raise ConfigError(
                f"train.objective={objective!r}: expected one of "
                f"{', '.join(accepted)} for data.task={task}")
        if self.data.kind == "series" and self.model.pretrained_embeddings:
            raise ConfigError(
                "model.pretrained_embeddings="
                f"{self.model.pretrained_embeddings!r}: expected none for "
                "numeric series (word vectors start a text model's "
                "embedding)")
        if task != "classification" and self.train.label_smoothing:
            raise ConfigError(
                f"train.label_smoothing={self.train.label_smoothing!r}: "
                f"expected 0 for data.task={task} (it smooths class "
                "labels)")

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Every key as `section.name` with its value."""
        return {f"{s}.{k}": v for s, d in self.to_dict().items()
                for k, v in d.items()}


def keys() -> list[str]:
    """Every valid dotted key."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)]


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args:
        return f"{_describe(args[0])} or none"
    return {int: "an integer", float: "a finite number",
            bool: "true or false",
            str: "a string"}[tp]


def coerce_value(key: str, tp, value):
    """Checks `value` against `tp`; parses it first when it is CLI text."""
    if typing.get_origin(tp) is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}={value!r}: expected {_describe(tp)}")
        return value
    optional = type(None) in typing.get_args(tp)
    if optional:
        if value is None or (isinstance(value, str)
                             and value.lower() in ("none", "null")):
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is bool:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("true", "yes", "1", "on"):
                return True
            if text in ("false", "no", "0", "off"):
                return False
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        number = None
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        if number is not None and math.isfinite(number):
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}={value!r}: expected {_describe(tp)}")


def split_key(key: str) -> tuple[str, str]:
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError(
            f"unknown config key {key!r}: keys start with one of "
            f"{', '.join(s + '.' for s in SECTIONS)}")
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if name not in names:
        raise ConfigError(
            f"unknown config key {key!r}; {section} keys are "
            f"{', '.join(names)}")
    return section, name


def _build(section: str, values: Mapping[str, Any]):
    try:
        return SECTIONS[section](**values)
    except ValueError as e:
        raise ConfigError(f"{section}.{e}") from None


def apply_overrides(
        config: Config,
        overrides: Mapping[str, Any] | Iterable[str]) -> Config:
    """Returns `config` with dotted keys replaced.

    Args:
        config: the starting configuration.
        overrides: `{"model.units": 128}` (values typed or as text), or
            `["model.units=128", ...]` as the command line gives them.

    Returns:
        A new, validated `Config`.

    Raises:
        ConfigError: a malformed item, unknown key, wrong type or
            impossible value, naming the key and what it accepts.
    """
    if not isinstance(overrides, Mapping):
        pairs = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(
                    f"malformed override {item!r}: expected key=value, "
                    "e.g. model.units=128")
            pairs[key.strip()] = value.strip()
        overrides = pairs
    sections = config.to_dict()
    for key, value in overrides.items():
        section, name = split_key(key)
        tp = _field_types(SECTIONS[section])[name]
        sections[section][name] = coerce_value(key, tp, value)
    return Config(**{s: _build(s, v) for s, v in sections.items()})


def from_dict(data: Mapping[str, Any]) -> Config:
    """Builds a `Config` from nested dicts (as `to_dict` and JSON give).

    Missing keys keep their defaults; unknown ones are an error.

    Raises:
        ConfigError: as for `apply_overrides`.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: expected a mapping, got {data!r}")
    flat = {}
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown config section {section!r}: expected one of "
                f"{', '.join(SECTIONS)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{section}: expected a mapping of keys")
        flat.update({f"{section}.{k}": v for k, v in values.items()})
    return apply_overrides(Config(), flat)


def differences(a: Config, b: Config) -> list[str]:
    """Keys whose values differ, as `key: a -> b` (where data is cached
    changes no result: not those)."""
    fa, fb = a.flat(), b.flat()
    ignored = {f"data.{name}" for name in CACHE_FIELDS}
    return [f"{k}: {fa[k]!r} -> {fb[k]!r}" for k in fa
            if fa[k] != fb[k] and k not in ignored]
