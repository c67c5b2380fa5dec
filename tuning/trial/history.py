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


def format_epoch(row: Mapping[str, float], epochs: int) -> str:
    """The one line that reports a finished epoch."""
    return (f"epoch {row['epoch']}/{epochs}  loss {row['loss']:.4f}  "
            f"accuracy {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}"
            f"  val_accuracy {row['val_accuracy']:.4f}  "
            f"gap {row['accuracy_gap']:+.4f}  {row['seconds']:.1f}s")
