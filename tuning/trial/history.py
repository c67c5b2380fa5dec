"""A run's `history.csv`: one row per finished epoch (no TensorFlow)."""

import csv
import pathlib
from collections.abc import Mapping, Sequence

from tuning.trial.files import write_atomic

HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                  "accuracy_gap", "loss_gap", "seconds", "ended_at")


def read_history(path: pathlib.Path) -> list[dict[str, float]]:
    """Rows of a `history.csv`, `epoch` as int and the rest as floats."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: int(v) if k == "epoch" else float(v)
                 for k, v in row.items()} for row in csv.DictReader(f)]


def write_history(path: pathlib.Path,
                  rows: Sequence[Mapping[str, float]]) -> None:
    """Writes `rows` whole (aside, then renamed); floats as `repr`, so
    they read back exactly."""
    lines = [",".join(HISTORY_FIELDS)]
    lines += [",".join(repr(r[k]) for k in HISTORY_FIELDS) for r in rows]
    write_atomic(path, "\n".join(lines) + "\n")
