"""PNG plots of training curves (matplotlib, no display needed)."""

import pathlib
from collections.abc import Mapping, Sequence


def plot_curves(rows: Sequence[Mapping[str, float]], path: pathlib.Path, *,
                title: str) -> None:
    """Train against validation loss and accuracy (a regression's mean
    absolute error) per epoch, side by side."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    regression = bool(rows) and math.isnan(rows[0]["accuracy"]) and not \
        math.isnan(rows[0].get("mae", math.nan))
    for ax, metric in zip(axes, ("loss", "mae" if regression
                                 else "accuracy")):
        ax.plot(epochs, [r[metric] for r in rows], "o-", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in rows], "o-",
                label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
