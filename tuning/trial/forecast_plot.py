"""A forecaster's test span drawn: each series' history, the truth and
the model's forecast (and the seasonal-naive one) on its test windows, as
a PNG in the run and an image in its TensorBoard logs."""

import pathlib

import numpy as np
import tensorflow as tf

SERIES_SHOWN = 4  # the first few series of a many-series set


def plot_forecast(windows, forecast: np.ndarray, path: pathlib.Path) -> None:
    """Draws the test windows' forecasts of `windows`
    (`data_pipeline.forecast.ForecastWindows`) against the truth, one
    panel per series (the first `SERIES_SHOWN`), into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    test = windows.splits["test"]
    shown = list(dict.fromkeys(test.series.tolist()))[:SERIES_SHOWN]
    naive = windows.baselines("test")["seasonal_naive"]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 3 * len(shown)),
                             squeeze=False, constrained_layout=True)
    for ax, s in zip(axes[:, 0], shown):
        series = windows.found.series[s]
        steps = (series.times if series.times is not None
                 else np.arange(len(series)))
        ax.plot(steps, series.values[:, 0], color="black", lw=1,
                label="history and truth")
        for k in np.flatnonzero(test.series == s):
            span = steps[test.origins[k]:test.origins[k] + windows.horizon]
            ax.plot(span, forecast[k], color="tab:red", lw=1.5,
                    label="forecast" if k == np.flatnonzero(
                        test.series == s)[0] else None)
            ax.plot(span, naive[k], color="tab:blue", lw=1, ls="--",
                    label="seasonal naive" if k == np.flatnonzero(
                        test.series == s)[0] else None)
            ax.axvline(span[0], color="gray", lw=0.8, ls=":")
        ax.set_title(f"{series.name}: test span")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def log_image(png: pathlib.Path, logdir: pathlib.Path, *,
              step: int) -> None:
    """`png` as the image `test_forecast` of TensorBoard run `logdir`."""
    image = tf.image.decode_png(png.read_bytes(), channels=4)
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        tf.summary.image("test_forecast", image[None], step=step)
    writer.close()
