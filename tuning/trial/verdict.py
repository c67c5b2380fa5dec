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
# Regressions (`num_classes` 0), judged on the loss (mean squared error):
UNDERFIT_R2 = 0.10  # final train R^2 (against the mean predictor) below
OVERFIT_LOSS_GAP = 0.50  # final validation / train loss - 1 above this

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
    f"{SLOPE_EPOCHS} epochs, per epoch. Regressions are judged on the "
    "loss (mean squared error) instead, with gap = validation loss / train "
    "loss - 1: underfitting if the final train loss is above "
    f"{1 - UNDERFIT_R2:.2f} times the train-mean predictor's (R^2 below "
    f"{UNDERFIT_R2:.2f}); overfitting if the final gap is above "
    f"{OVERFIT_LOSS_GAP:.2f}, or validation loss rose as above.")


def gap(row: Mapping[str, float], *, num_classes: int) -> float:
    """How far an epoch's training figures run ahead of its validation
    figures: train - validation accuracy, or for a regression
    (`num_classes` 0) validation / train loss - 1."""
    if num_classes == 0:
        loss = row["loss"]
        return row["val_loss"] / loss - 1 if loss > 0 else math.nan
    return row["accuracy"] - row["val_accuracy"]


def gap_threshold(num_classes: int) -> float:
    """The gap above which a run overfits."""
    return OVERFIT_LOSS_GAP if num_classes == 0 else OVERFIT_GAP


def judge(rows: Sequence[Mapping[str, float]], *,
          num_classes: int, baseline_loss: float = math.nan
          ) -> tuple[str, str]:
    """Judges per-epoch rows holding loss, accuracy, val_loss, val_accuracy.

    Args:
        rows: one mapping per epoch, in order.
        num_classes: number of classes (chance accuracy is 1 / this); 0
            for a regression, judged on its loss.
        baseline_loss: regression: the loss of predicting the training
            targets' mean (their variance); NaN skips the underfitting
            rule.

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
    underfit = _underfit(last, num_classes, baseline_loss)
    if underfit:
        return "underfitting", underfit
    value, threshold = gap(last, num_classes=num_classes), gap_threshold(
        num_classes)
    what = ("validation / train loss - 1" if num_classes == 0
            else "train - validation accuracy")
    if value > threshold:
        return "overfitting", f"final {what} {value:+.4f} > {threshold}"
    if _loss_rise_onset(rows) is not None:
        best = min(rows, key=lambda r: r["val_loss"])
        loss = ".4g" if num_classes == 0 else ".3f"
        return "overfitting", (
            f"validation loss rose from {best['val_loss']:{loss}} (epoch "
            f"{best['epoch']}) to {last['val_loss']:{loss}} while training "
            "loss fell")
    return "healthy", (
        f"{what} {value:+.4f} <= {threshold}, validation loss within "
        f"{VAL_LOSS_RISE - 1:.0%} of its minimum")


def _underfit(last, num_classes: int, baseline_loss: float) -> str:
    """Why the final epoch underfits ("" if it does not): a train
    accuracy near chance, or a regression's train loss near its
    train-mean predictor's (NaN: not judged)."""
    if num_classes == 0:
        if last["loss"] > (1 - UNDERFIT_R2) * baseline_loss:
            return (f"final train loss {last['loss']:.4g} > "
                    f"{1 - UNDERFIT_R2:.2f} x the train-mean predictor's "
                    f"{baseline_loss:.4g} (R^2 "
                    f"{1 - last['loss'] / baseline_loss:.3f} < "
                    f"{UNDERFIT_R2:.2f})")
        return ""
    chance = 1 / num_classes
    if last["accuracy"] < chance + UNDERFIT_MARGIN:
        return (f"final train accuracy {last['accuracy']:.3f} < chance "
                f"{chance:.2f} + {UNDERFIT_MARGIN:.2f}")
    return ""


def minimizes(objective: str) -> bool:
    """Whether lower is better for `objective` (a loss or an error) or
    higher (an accuracy)."""
    return not objective.endswith("accuracy")


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
                  num_classes: int = 2,
                  baseline_loss: float = math.nan) -> int | None:
    """The epoch from which the run overfits, by the rule that judged it
    so: the first epoch from which the gap (`gap`) stays above its
    threshold, or, when only validation loss gave it away, the epoch
    after the validation-loss minimum. None unless the verdict is
    overfitting, so the two never disagree."""
    if judge(rows, num_classes=num_classes,
             baseline_loss=baseline_loss)[0] != "overfitting":
        return None
    gaps = [gap(r, num_classes=num_classes) for r in rows]
    threshold = gap_threshold(num_classes)
    if gaps[-1] > threshold:
        onset = len(gaps)
        while onset > 1 and gaps[onset - 2] > threshold:
            onset -= 1
        return rows[onset - 1]["epoch"]
    return _loss_rise_onset(rows)


def gap_slope(rows: Sequence[Mapping[str, float]],
              epochs: int = SLOPE_EPOCHS, *, num_classes: int = 2) -> float:
    """Least-squares slope of the gap (`gap`) over the last `epochs`
    epochs, per epoch (NaN with fewer than two)."""
    tail = rows[-epochs:]
    if len(tail) < 2:
        return math.nan
    return statistics.linear_regression(
        [r["epoch"] for r in tail],
        [gap(r, num_classes=num_classes) for r in tail]).slope


def analyze(rows: Sequence[Mapping[str, float]], *, num_classes: int,
            objective: str = "val_accuracy",
            baseline_loss: float = math.nan) -> dict:
    """The overfitting figures of one run's curves (`num_classes` 0: a
    regression, `baseline_loss` its train-mean predictor's loss).

    Returns:
        best_epoch, best_val_accuracy and best_val_rmse (by `objective`),
        the accuracy gap at the best epoch and at the end, the gap (`gap`:
        the accuracy gap, or a regression's loss ratio) likewise
        (gap_at_best, final_gap), overfit_onset_epoch, gap_slope (last
        `SLOPE_EPOCHS` epochs), epochs, verdict and verdict_reason.
    """
    word, reason = judge(rows, num_classes=num_classes,
                         baseline_loss=baseline_loss)
    figures = {"epochs": len(rows), "verdict": word, "verdict_reason": reason,
               "best_epoch": None, "best_val_accuracy": math.nan,
               "best_val_rmse": math.nan,
               "accuracy_gap_at_best": math.nan,
               "final_accuracy_gap": math.nan,
               "gap_at_best": math.nan, "final_gap": math.nan,
               "overfit_onset_epoch": overfit_onset(
                   rows, num_classes=num_classes,
                   baseline_loss=baseline_loss),
               "gap_slope": gap_slope(rows, num_classes=num_classes)}
    best = best_row(rows, objective)
    if best is not None and math.isfinite(best[objective]):
        figures.update(
            best_epoch=best["epoch"], best_val_accuracy=best["val_accuracy"],
            best_val_rmse=best.get("val_rmse", math.nan),
            accuracy_gap_at_best=best["accuracy"] - best["val_accuracy"],
            gap_at_best=gap(best, num_classes=num_classes))
    if rows:
        figures["final_accuracy_gap"] = (rows[-1]["accuracy"]
                                         - rows[-1]["val_accuracy"])
        figures["final_gap"] = gap(rows[-1], num_classes=num_classes)
    return figures
