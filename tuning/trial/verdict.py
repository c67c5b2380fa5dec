"""A one-word judgement of a training curve, with the rule that made it.

Pure Python, so reports can judge runs without TensorFlow. The rules and
their thresholds are defined here alone; `RULES` says them in words (the
report prints it).
"""

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")

UNDERFIT_MARGIN = 0.10  # final train accuracy below chance + this
OVERFIT_GAP = 0.05  # final train - validation accuracy above this
VAL_LOSS_RISE = 1.10  # validation loss this many times its minimum
SLOPE_EPOCHS = 3  # epochs the gap slope is fitted over

RULES = (
    "verdict, first rule that applies (gap = train - validation accuracy): "
    "diverged if a loss is NaN or infinite; underfitting if the final "
    f"train accuracy is below chance + {UNDERFIT_MARGIN:.2f}; overfitting "
    f"if the final gap is above {OVERFIT_GAP:.2f}, or validation loss rose "
    f"{VAL_LOSS_RISE - 1:.0%} above its minimum while training loss kept "
    "falling; healthy otherwise. Overfit onset (overfitting runs only): "
    f"the first epoch from which the gap stays above {OVERFIT_GAP:.2f}, or, "
    "when only validation loss rose, the epoch after its minimum. "
    "Gap slope: least-squares slope of the gap over the last "
    f"{SLOPE_EPOCHS} epochs, per epoch.")


def judge(rows: Sequence[Mapping[str, float]], *,
          num_classes: int) -> tuple[str, str]:
    """Judges per-epoch rows holding loss, accuracy, val_loss, val_accuracy.

    Args:
        rows: one mapping per epoch, in order.
        num_classes: number of classes (chance accuracy is 1 / this).

    Returns:
        `(verdict, reason)`: the verdict word and the rule that fired, with
        the figures it compared.
    """
    if not rows:
        return "diverged", "no epoch finished"
    for row in rows:
        for key in ("loss", "val_loss"):
            if not math.isfinite(row[key]):
                return "diverged", (
                    f"{key} is {row[key]} at epoch {row['epoch']}")
    last = rows[-1]
    chance = 1 / num_classes
    if last["accuracy"] < chance + UNDERFIT_MARGIN:
        return "underfitting", (
            f"final train accuracy {last['accuracy']:.3f} < chance "
            f"{chance:.2f} + {UNDERFIT_MARGIN:.2f}")
    gap = last["accuracy"] - last["val_accuracy"]
    if gap > OVERFIT_GAP:
        return "overfitting", (
            f"final train - validation accuracy {gap:+.4f} > {OVERFIT_GAP}")
    if _loss_rise_onset(rows) is not None:
        best = min(rows, key=lambda r: r["val_loss"])
        return "overfitting", (
            f"validation loss rose from {best['val_loss']:.3f} (epoch "
            f"{best['epoch']}) to {last['val_loss']:.3f} while training "
            "loss fell")
    return "healthy", (
        f"train - validation accuracy {gap:+.4f} <= {OVERFIT_GAP}, "
        f"validation loss within {VAL_LOSS_RISE - 1:.0%} of its minimum")


def minimizes(objective: str) -> bool:
    """Whether lower is better for `objective` (a loss) or higher (an
    accuracy)."""
    return objective.endswith("loss")


def rank(objective: str, value: float) -> float:
    """Sort key of a value of `objective`: the best sorts first."""
    return value if minimizes(objective) else -value


def best_first(items: Iterable[T], objective: str,
               value: Callable[[T], float | None]) -> list[T]:
    """The `items` with a figure for `objective` (`value(item)`, neither
    None nor NaN), best first, ties in their given order: the one ranking
    of runs, trials and cells."""
    scored = [(v, item) for item in items
              if (v := value(item)) is not None and not math.isnan(v)]
    return [item for _, item in sorted(
        scored, key=lambda pair: rank(objective, pair[0]))]


def _is_better(objective: str, value: float, best: float) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return rank(objective, value) < rank(objective, best)


def best_row(rows, objective: str) -> dict | None:
    """The first row with the best `objective` (NaN never wins)."""
    best = None
    for row in rows:
        if best is None or _is_better(objective, row[objective],
                                      best[objective]):
            best = row
    return best


def _loss_rise_onset(rows) -> int | None:
    """The epoch after the validation-loss minimum, if validation loss has
    since risen `VAL_LOSS_RISE` times above it while training loss fell."""
    best = min(rows, key=lambda r: r["val_loss"])
    last = rows[-1]
    if (last["val_loss"] > VAL_LOSS_RISE * best["val_loss"]
            and last["loss"] < best["loss"]):
        return best["epoch"] + 1
    return None


def overfit_onset(rows: Sequence[Mapping[str, float]], *,
                  num_classes: int = 2) -> int | None:
    """The epoch from which the run overfits, by the rule that judged it
    so: the first epoch from which the accuracy gap stays above
    `OVERFIT_GAP`, or, when only validation loss gave it away, the epoch
    after the validation-loss minimum. None unless the verdict is
    overfitting, so the two never disagree."""
    if judge(rows, num_classes=num_classes)[0] != "overfitting":
        return None
    gaps = [r["accuracy"] - r["val_accuracy"] for r in rows]
    if gaps[-1] > OVERFIT_GAP:
        onset = len(gaps)
        while onset > 1 and gaps[onset - 2] > OVERFIT_GAP:
            onset -= 1
        return rows[onset - 1]["epoch"]
    return _loss_rise_onset(rows)


def gap_slope(rows: Sequence[Mapping[str, float]],
              epochs: int = SLOPE_EPOCHS) -> float:
    """Least-squares slope of the accuracy gap over the last `epochs`
    epochs, per epoch (NaN with fewer than two)."""
    tail = rows[-epochs:]
    if len(tail) < 2:
        return math.nan
    return statistics.linear_regression(
        [r["epoch"] for r in tail],
        [r["accuracy"] - r["val_accuracy"] for r in tail]).slope


def analyze(rows: Sequence[Mapping[str, float]], *, num_classes: int,
            objective: str = "val_accuracy") -> dict:
    """The overfitting figures of one run's curves.

    Returns:
        best_epoch and best_val_accuracy (by `objective`), the accuracy gap
        at the best epoch and at the end, overfit_onset_epoch, gap_slope
        (last `SLOPE_EPOCHS` epochs), epochs, verdict and verdict_reason.
    """
    word, reason = judge(rows, num_classes=num_classes)
    figures = {"epochs": len(rows), "verdict": word, "verdict_reason": reason,
               "best_epoch": None, "best_val_accuracy": math.nan,
               "accuracy_gap_at_best": math.nan,
               "final_accuracy_gap": math.nan,
               "overfit_onset_epoch": overfit_onset(
                   rows, num_classes=num_classes),
               "gap_slope": gap_slope(rows)}
    best = best_row(rows, objective)
    if best is not None and math.isfinite(best[objective]):
        figures.update(
            best_epoch=best["epoch"], best_val_accuracy=best["val_accuracy"],
            accuracy_gap_at_best=best["accuracy"] - best["val_accuracy"])
    if rows:
        figures["final_accuracy_gap"] = (rows[-1]["accuracy"]
                                         - rows[-1]["val_accuracy"])
    return figures
