"""Search spaces as data, keyed by the dotted config keys `--set` uses.

A space is a list of dimensions: `choice` (a list of values), `int`
(`low`..`high` with a `step`, or `log`) and `float` (`low`..`high`, or
`log`), each optionally active only `when` another choice takes given
values. Spaces ship as presets (`SPACES`) or come from a JSON or TOML file:

    {
      "model.cell": {"choice": ["simple_rnn", "gru", "lstm"]},
      "model.units": {"int": [16, 128], "step": 16},
      "train.learning_rate": {"float": [1e-4, 1e-2], "log": true},
      "model.bidirectional": {"choice": [false, true],
                              "when": {"model.cell": ["gru", "lstm"]}}
    }

Each backend adapts this one definition (`tuning.backends`); sampled values
go through `tuning.trial.config.apply_overrides`, as `--set` values do.
"""

import dataclasses
import json
import pathlib
import tomllib
import typing
from collections.abc import Mapping
from typing import Any, Literal

from tuning.trial.config import (SECTIONS, Config, ConfigError,
                                 apply_overrides, coerce_value, split_key)

DimensionKind = Literal["choice", "int", "float"]


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched key.

    Attributes:
        key: dotted config key, e.g. `model.units`.
        kind: `choice`, `int` or `float`.
        values: the choices (for `choice`).
        low, high: inclusive bounds (for `int` and `float`).
        step: grid step (for `int`; optional for `float`).
        log: sample on a log scale (for `int` and `float`).
        when: `(parent_key, parent_values)`: active only when the parent
            choice takes one of these values.
    """

    key: str
    kind: DimensionKind
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: tuple[str, tuple] | None = None

    def grid(self) -> list:
        """Every value of a choice or stepped int (for grid search)."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1,
                              int(self.step or 1)))
        if self.step:
            n = int(round((self.high - self.low) / self.step))
            return [round(self.low + i * self.step, 10) for i in range(n + 1)]
        raise ConfigError(
            f"{self.key}: a float range without a step has no grid; give "
            "it a step or make it a choice")

    def domain(self) -> str:
        if self.kind == "choice":
            return "{" + ", ".join(map(repr, self.values)) + "}"
        scale = ", log" if self.log else ""
        step = f", step {self.step:g}" if self.step else ""
        return f"[{self.low:g}, {self.high:g}{step}{scale}]"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    name: str
    dimensions: tuple[Dimension, ...]

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    def active(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values whose conditions hold (inactive keys dropped)."""
        out = {}
        for d in self.dimensions:
            if d.when is None or values.get(d.when[0]) in d.when[1]:
                if d.key in values:
                    out[d.key] = values[d.key]
        return out

    def notes(self) -> list[str]:
        """What a user should know before running this space."""
        notes = []
        for d in self.dimensions:
            if d.key == "model.recurrent_dropout" and (
                    any(d.values) if d.kind == "choice" else d.high > 0):
                notes.append("model.recurrent_dropout above 0 keeps a GRU or "
                             "LSTM off the cuDNN kernel on a GPU (several "
                             "times slower there)")
        return notes

    def configure(self, base: Config, values: Mapping[str, Any]) -> Config:
        """`base` with the active sampled values applied."""
        return apply_overrides(base, self.active(values))

    def to_dict(self) -> dict[str, dict]:
        out = {}
        for d in self.dimensions:
            if d.kind == "choice":
                spec = {"choice": list(d.values)}
            else:
                spec = {d.kind: [d.low, d.high]}
                if d.step:
                    spec["step"] = d.step
                if d.log:
                    spec["log"] = True
            if d.when:
                spec["when"] = {d.when[0]: list(d.when[1])}
            out[d.key] = spec
        return out


def _field_type(key: str):
    section, name = split_key(key)
    return typing.get_type_hints(SECTIONS[section])[name]


def _number(key: str, value, integer: bool):
    ok = isinstance(value, int if integer else (int, float))
    if not ok or isinstance(value, bool):
        raise ConfigError(
            f"space {key}: bound {value!r} is not "
            f"{'an integer' if integer else 'a number'}")
    return value


def _dimension(key: str, spec, earlier: dict[str, Dimension]) -> Dimension:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"space {key}: expected a table such as "
                          '{"choice": [...]}, {"int": [low, high]} or '
                          '{"float": [low, high]}')
    kinds = [k for k in ("choice", "int", "float") if k in spec]
    unknown = set(spec) - {"choice", "int", "float", "step", "log", "when"}
    if unknown:
        raise ConfigError(
            f"space {key}: unknown field(s) {', '.join(sorted(unknown))}; "
            "fields are choice, int, float, step, log, when")
    if len(kinds) != 1:
        raise ConfigError(f"space {key}: give exactly one of choice, int, "
                          "float")
    kind = kinds[0]
    field_type = _field_type(key)
    when = None
    if "when" in spec:
        cond = spec["when"]
        if not isinstance(cond, Mapping) or len(cond) != 1:
            raise ConfigError(f"space {key}: 'when' takes one key, e.g. "
                              '{"model.cell": ["gru", "lstm"]}')
        (parent, parent_values), = cond.items()
        if parent not in earlier or earlier[parent].kind != "choice":
            raise ConfigError(
                f"space {key}: 'when' names {parent!r}, which must be a "
                "choice listed before it")
        if not isinstance(parent_values, list) or not parent_values:
            raise ConfigError(f"space {key}: 'when' values must be a "
                              "non-empty list")
        bad = [v for v in parent_values
               if v not in earlier[parent].values]
        if bad:
            raise ConfigError(
                f"space {key}: 'when' value(s) {bad!r} are not choices of "
                f"{parent}")
        when = (parent, tuple(parent_values))
    if kind == "choice":
        values = spec["choice"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"space {key}: choice needs a non-empty list")
        if "step" in spec or "log" in spec:
            raise ConfigError(f"space {key}: step and log apply to int and "
                              "float only")
        values = tuple(coerce_value(key, field_type, v) for v in values)
        if len(set(values)) != len(values):
            raise ConfigError(f"space {key}: a choice is listed twice")
        return Dimension(key, "choice", values=values, when=when)
    bounds = spec[kind]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"space {key}: {kind} takes [low, high]")
    integer = kind == "int"
    if field_type is not (int if integer else float):
        raise ConfigError(
            f"space {key}: {kind} range does not fit the key's type; use "
            "a choice")
    low, high = (_number(key, b, integer) for b in bounds)
    if not low < high:
        raise ConfigError(f"space {key}: low {low} must be < high {high}")
    step = spec.get("step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"space {key}: log must be true or false")
    if step is not None:
        _number(key, step, integer)
        if step <= 0:
            raise ConfigError(f"space {key}: step must be > 0")
        if log:
            raise ConfigError(f"space {key}: use step or log, not both")
    if log and low <= 0:
        raise ConfigError(f"space {key}: a log range needs low > 0")
    for bound in (low, high):  # the config itself must accept the bounds
        apply_overrides(Config(), {key: bound})
    return Dimension(key, kind, low=low, high=high,
                     step=step if step is not None else (1 if integer
                                                         else None),
                     log=log, when=when)


def from_dict(data: Mapping[str, Any], *, name: str = "custom"
              ) -> SearchSpace:
    """Validates a space given as `{key: spec}`.

    Raises:
        ConfigError: an unknown key, a malformed spec, bounds the config
            rejects, or a condition on an unknown choice.
    """
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"space {name}: expected a non-empty table of "
                          "dotted keys")
    dims: dict[str, Dimension] = {}
    for key, spec in data.items():
        split_key(key)
        dims[key] = _dimension(key, spec, dims)
    return SearchSpace(name=name, dimensions=tuple(dims.values()))


def load(path: str | pathlib.Path) -> SearchSpace:
    """Reads a space file (`.json` or `.toml`)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such space file")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            raise ConfigError(f"{path}: space files end in .json or .toml")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix[1:]}: {e}"
                          ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        return from_dict(_dotted(data), name=path.stem)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _dotted(data):
    """`{"model": {"units": spec}}` (TOML's `[model.units]`) as
    `{"model.units": spec}`, in the file's order; dotted keys as they
    are."""
    if not isinstance(data, Mapping):
        return data
    flat = {}
    for key, spec in data.items():
        if "." not in key and isinstance(spec, Mapping):
            flat.update({f"{key}.{sub}": value
                         for sub, value in spec.items()})
        else:
            flat[key] = spec
    return flat


SPACES: dict[str, tuple[str, dict]] = {
    "cells": ("all three cell types with width, depth, dropout and "
              "learning rate", {
                  "model.cell": {"choice": ["simple_rnn", "gru", "lstm"]},
                  "model.units": {"int": [16, 128], "step": 16},
                  "model.num_layers": {"int": [1, 2]},
                  "model.bidirectional": {
                      "choice": [False, True],
                      "when": {"model.cell": ["gru", "lstm"]}},
                  "model.dropout": {"float": [0.0, 0.5], "step": 0.1},
                  "train.learning_rate": {"float": [1e-4, 1e-2],
                                          "log": True},
              }),
    "wide": ("cells plus embedding, vocabulary, length and batch size", {
        "model.cell": {"choice": ["simple_rnn", "gru", "lstm"]},
        "model.units": {"int": [16, 256], "step": 16},
        "model.num_layers": {"int": [1, 3]},
        "model.bidirectional": {"choice": [False, True],
                                "when": {"model.cell": ["gru", "lstm"]}},
        "model.embedding_dim": {"choice": [16, 32, 64, 128]},
        "model.dropout": {"float": [0.0, 0.5], "step": 0.1},
        "train.learning_rate": {"float": [1e-4, 1e-2], "log": True},
        "train.batch_size": {"choice": [32, 64, 128]},
        "data.max_tokens": {"choice": [5000, 10000, 20000]},
        "data.sequence_length": {"choice": [100, 200, 300]},
    }),
    "regularized": ("GRU and LSTM with the knobs against overfitting: "
                    "pooling, token and layer dropout, weight decay, "
                    "label smoothing, clipping, learning-rate schedule", {
                        "model.cell": {"choice": ["gru", "lstm"]},
                        "model.units": {"choice": [32, 64, 128]},
                        "model.bidirectional": {"choice": [False, True]},
                        "model.pooling": {"choice": ["last", "mean", "max",
                                                     "attention"]},
                        "model.embedding_dropout": {"float": [0.0, 0.4],
                                                    "step": 0.1},
                        "model.dropout": {"float": [0.0, 0.5], "step": 0.1},
                        "train.learning_rate": {"float": [3e-4, 3e-3],
                                                "log": True},
                        "train.weight_decay": {"choice": [0.0, 0.01, 0.05,
                                                          0.2]},
                        "train.label_smoothing": {"choice": [0.0, 0.1]},
                        "train.clipnorm": {"choice": [0.0, 1.0]},
                        "train.lr_schedule": {"choice": ["constant",
                                                         "cosine",
                                                         "plateau"]},
                    }),
    "pooled": ("for long texts and few trials: GRU or LSTM read through a "
               "max, attention or mean pooling, token and layer dropout, "
               "weight decay, learning rate (the base sets the rest)", {
                   "model.cell": {"choice": ["gru", "lstm"]},
                   "model.pooling": {"choice": ["max", "attention",
                                                "mean"]},
                   "model.embedding_dropout": {"choice": [0.0, 0.2, 0.4]},
                   "model.dropout": {"float": [0.2, 0.5], "step": 0.1},
                   "train.learning_rate": {"float": [5e-4, 3e-3],
                                           "log": True},
                   "train.weight_decay": {"choice": [0.0, 0.01, 0.05]},
               }),
    "sequences": ("numeric series: the three cells, width, depth, "
                  "direction, pooling, dropout and learning rate, and the "
                  "data keys that change the prepared arrays (normalization, "
                  "a length cap; trials with the same ones share them)", {
                      "model.cell": {"choice": ["simple_rnn", "gru",
                                                "lstm"]},
                      "model.units": {"choice": [32, 64, 128]},
                      "model.num_layers": {"int": [1, 2]},
                      "model.bidirectional": {"choice": [False, True]},
                      "model.pooling": {"choice": ["last", "mean", "max",
                                                   "attention"]},
                      "model.dropout": {"float": [0.0, 0.5], "step": 0.1},
                      "train.learning_rate": {"float": [3e-4, 1e-2],
                                              "log": True},
                      "data.normalize": {"choice": ["channel", "series",
                                                      "none"]},
                      "data.sequence_length": {"choice": [16, 32, 100]},
                  }),
    "forecast": ("forecasting: the lookback and the training windows' "
                 "stride (trials window the same series again), the three "
                 "cells, width, depth, dropout, learning rate and the "
                 "normalization (each window's own, or the training "
                 "span's)", {
                     "model.cell": {"choice": ["simple_rnn", "gru",
                                               "lstm"]},
                     "data.lookback": {"choice": [6, 12, 24, 36]},
                     "data.stride": {"choice": [1, 2]},
                     "model.units": {"choice": [16, 32, 64]},
                     "model.num_layers": {"int": [1, 2]},
                     "model.dropout": {"float": [0.0, 0.3], "step": 0.1},
                     "train.learning_rate": {"float": [1e-3, 1e-2],
                                             "log": True},
                     "data.normalize": {"choice": ["series", "channel"]},
                 }),
    "tiny": ("two cells and two widths: a few seconds per trial, for "
             "smoke runs and CI", {
                 "model.cell": {"choice": ["gru", "lstm"]},
                 "model.units": {"choice": [4, 8]},
                 "train.learning_rate": {"float": [1e-3, 1e-2],
                                         "log": True},
             }),
}


def get_space(name_or_path: str) -> SearchSpace:
    """A named space, or a space file when the name is not one.

    Raises:
        ConfigError: neither a space name nor a readable space file.
    """
    if name_or_path in SPACES:
        return from_dict(SPACES[name_or_path][1], name=name_or_path)
    if name_or_path.endswith((".json", ".toml")):
        return load(name_or_path)
    raise ConfigError(
        f"unknown space {name_or_path!r}: expected one of "
        f"{', '.join(SPACES)} or a .json / .toml file")


