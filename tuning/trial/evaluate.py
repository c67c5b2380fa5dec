"""Scoring a model on a split.

One way to score, everywhere: Keras' own loss and metrics, compiled as
the run trains (`tuning.trial.optimization`: label smoothing included),
so the test figures a run records at its end and those a study or a
comparison records for its chosen model are the same numbers. One
decision rule turns probabilities into labels (`predicted_labels`).
"""

import math
import pathlib

import keras
import numpy as np
import tensorflow as tf

from tuning.trial.optimization import THRESHOLD, compile_model

SCORE_BATCH_SIZE = 256


def predicted_labels(probabilities: np.ndarray) -> np.ndarray:
    """The label index of each row of a model's output."""
    if probabilities.shape[-1] == 1:
        return (probabilities[:, 0] > THRESHOLD).astype(np.int64)
    return np.argmax(probabilities, axis=-1)


def score(model: keras.Model, batches: tf.data.Dataset) -> dict:
    """The test figures (`RunMetrics`' `test_*` fields) of a compiled
    model on batches of (inputs, labels): loss, accuracy and balanced
    accuracy, or for a regression loss (mean squared error), MAE and
    RMSE."""
    figures = model.evaluate(batches, verbose=0, return_dict=True)
    names = (("mae", "rmse") if "mae" in figures
             else ("accuracy", "balanced_accuracy"))
    return {f"test_{name}": float(figures[name])
            for name in ("loss", *names)}


def forecast_test(model: keras.Model, windows) -> np.ndarray:
    """A forecaster's forecasts [windows, horizon] of the test windows of
    `windows` (`data_pipeline.forecast.ForecastWindows`)."""
    test = windows.splits["test"]
    return model.predict(
        {"values": test.inputs,
         "lengths": np.full(len(test), windows.lookback, np.int32)},
        batch_size=SCORE_BATCH_SIZE, verbose=0)


def forecast_figures(windows, forecast: np.ndarray) -> dict:
    """A forecaster's test figures beyond `score`'s: MAE, RMSE, MAPE,
    sMAPE and MASE of `forecast` on the test windows (every series
    alike, unweighted), and the trivial forecasts' on the same windows."""
    return {**{f"test_{name}": value
               for name, value in windows.errors("test", forecast).items()},
            "test_baselines": {name: windows.errors("test", baseline)
                               for name, baseline
                               in windows.baselines("test").items()}}


def score_exported(model_path: pathlib.Path, test: tuple | None, *,
                   num_classes: int, label_smoothing: float) -> dict:
    """The exported model at `model_path` scored on `test`, `(inputs,
    labels)` (and weights, for a forecast) as a user would run it (raw
    texts, or raw series values and lengths), with the loss its run
    trained with: NaN figures when there is no test split."""
    if test is None:
        return {"test_loss": math.nan}
    model = keras.models.load_model(model_path)
    compile_model(model, num_classes=num_classes,
                  label_smoothing=label_smoothing)
    batches = tf.data.Dataset.from_tensor_slices(test).batch(
        SCORE_BATCH_SIZE)
    return score(model, batches)
