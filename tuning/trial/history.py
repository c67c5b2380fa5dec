"""A run's `history.csv`: one row per finished epoch (no TensorFlow)."""

import csv
import math
import pathlib
from collections.abc import Mapping, Sequence

from tuning.trial.files import write_atomic

# accuracy for classification; mae and rmse (mean absolute and root mean
# squared error) for a regression; the others' columns hold NaN.
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                  "mae", "val_mae", "rmse", "val_rmse",
                  "accuracy_gap", "loss_gap", "seconds", "ended_at")


def read_history(path: pathlib.Path) -> list[dict[str, float]]:
    """Rows of a `history.csv`, `epoch` as int and the rest as floats (a
    column the file lacks read as NaN; one NaN object, so that rows read
    twice compare equal)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: int(row[k]) if k == "epoch" else _number(row.get(k))
                 for k in HISTORY_FIELDS} for row in csv.DictReader(f)]


def _number(cell: str | None) -> float:
    value = float(cell or "nan")
    return math.nan if math.isnan(value) else value


def write_history(path: pathlib.Path,
                  rows: Sequence[Mapping[str, float]]) -> None:
    """Writes `rows` whole (aside, then renamed); floats as `repr`, so
    they read back exactly (a figure a row lacks as NaN)."""
    lines = [",".join(HISTORY_FIELDS)]
    lines += [",".join(repr(r.get(k, math.nan)) for k in HISTORY_FIELDS)
              for r in rows]
    write_atomic(path, "\n".join(lines) + "\n")


def format_epoch(row: Mapping[str, float], epochs: int) -> str:
    """The one line that reports a finished epoch."""
    if math.isnan(row["accuracy"]) and not math.isnan(
            row.get("mae", math.nan)):
        return (f"epoch {row['epoch']}/{epochs}  loss {row['loss']:.4g}  "
                f"mae {row['mae']:.4g}  val_loss {row['val_loss']:.4g}  "
                f"val_mae {row['val_mae']:.4g}  val_rmse "
                f"{row['val_rmse']:.4g}  {row['seconds']:.1f}s")
    return (f"epoch {row['epoch']}/{epochs}  loss {row['loss']:.4f}  "
            f"accuracy {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}"
            f"  val_accuracy {row['val_accuracy']:.4f}  "
            f"gap {row['accuracy_gap']:+.4f}  {row['seconds']:.1f}s")
