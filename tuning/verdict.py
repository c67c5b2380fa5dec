"""A one-word judgement of a training curve, with the rule that made it.

Pure Python, so reports can judge runs without TensorFlow. Rules, first
match wins (accuracy gap = train - validation accuracy):

- diverged: a training or validation loss is NaN or infinite;
- underfitting: final training accuracy below chance + 0.10;
- overfitting: final accuracy gap above 0.05, or validation loss has risen
  10 % above its minimum while training loss kept falling since then;
- healthy: none of the above.
"""

import math
from collections.abc import Mapping, Sequence

UNDERFIT_MARGIN = 0.10
OVERFIT_GAP = 0.05
VAL_LOSS_RISE = 1.10


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
            f"final train - validation accuracy {gap:.3f} > {OVERFIT_GAP}")
    best = min(rows, key=lambda r: r["val_loss"])
    if (last["val_loss"] > VAL_LOSS_RISE * best["val_loss"]
            and last["loss"] < best["loss"]):
        return "overfitting", (
            f"validation loss rose from {best['val_loss']:.3f} (epoch "
            f"{best['epoch']}) to {last['val_loss']:.3f} while training "
            "loss fell")
    return "healthy", (
        f"train - validation accuracy {gap:.3f} <= {OVERFIT_GAP}, "
        "validation loss within 10 % of its minimum")
