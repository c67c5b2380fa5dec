"""Forecasting windows prepared for a run: the `SeriesArrays` interface the
trial function reads, over windows rather than whole series.

    arrays = ForecastArrays.build(data)
    arrays.dataset("train", global_batch_size=32, shuffle=True, seed=1)

Batches are `({"values", "lengths"}, targets[horizon], weights)`: every
window is `lookback` steps long; the weights make the loss weigh each
series alike (`data_pipeline.forecast.Windows`). Normalization statistics
come from the training span only: `data.normalize=channel` fits each
channel's mean and variance on the training windows' steps and the
targets' on their targets; `series` leaves them at 0 and 1 and the model
scales each window by its own (`models.layers.WindowScale`).
"""

import dataclasses
import hashlib

import numpy as np
import tensorflow as tf

from data_pipeline.config import DataConfig
from data_pipeline.forecast import (ForecastWindows, forecast_windows,
                                    load_forecast_set)
from data_pipeline.pipeline import ShuffleEpoch, planned_dataset
from data_pipeline.series_arrays import SeriesArrays
from data_pipeline.sources import DataInfo


def _fingerprint(windows) -> str:
    digest = hashlib.sha256()
    for array in (windows.inputs, windows.targets, windows.series,
                  windows.origins):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class ForecastArrays(SeriesArrays):
    """`SeriesArrays` of forecasting windows (`labels`: float32 [windows,
    horizon]), with the windows themselves (`forecast`) for the test
    figures and baselines."""

    forecast: ForecastWindows | None = None

    @property
    def horizon(self) -> int:
        return self.forecast.horizon

    @classmethod
    def build(cls, data: DataConfig, *,
              validation_in_train: bool = False) -> "ForecastArrays":
        """Reads `data`'s series (once per process) and windows them
        (`validation_in_train`: `forecast_windows`'s).

        Raises:
            DataError: the file is missing or malformed, or the series
                are too short for a window of each split.
        """
        found = load_forecast_set(data)
        windows = forecast_windows(found, data,
                                   validation_in_train=validation_in_train)
        splits = windows.splits
        train = splits["train"]
        channels = train.inputs.shape[2]
        mean = np.zeros(channels, np.float32)
        variance = np.ones(channels, np.float32)
        targets = {}
        if data.normalize == "channel":
            steps = train.inputs.reshape(-1, channels).astype(np.float64)
            mean = steps.mean(axis=0).astype(np.float32)
            variance = steps.var(axis=0).astype(np.float32)
            targets = {"target_mean": float(train.targets.mean()),
                       "target_std": float(train.targets.std()) or 1.0}
        lengths = np.asarray([len(s) for s in found.series])
        info = DataInfo(
            class_names=(), notes=windows.notes,
            description=(f"{found.description}: {len(found.series)} "
                         f"series, {len(found.channels)} channel(s) "
                         f"({', '.join(found.channels)}; the first "
                         f"forecast), lengths {int(lengths.min())} to "
                         f"{int(lengths.max())}"),
            stats={"series": len(found.series),
                   "windows": {n: len(w) for n, w in splits.items()}},
            fingerprints={n: _fingerprint(w) for n, w in splits.items()})
        return cls(values={n: w.inputs for n, w in splits.items()},
                   labels={n: w.targets for n, w in splits.items()},
                   lengths={n: np.full(len(w), data.lookback, np.int32)
                            for n, w in splits.items()},
                   info=info, mean=mean, variance=variance,
                   forecast=windows, **targets)

    @property
    def baseline_loss(self) -> float:
        """The training loss (weighted mean squared error) of forecasting
        every step with one number, the best one: what `R^2` is measured
        against, in the targets' own units whatever `data.normalize`
        (`target_std` stays 1 when the model scales each window)."""
        train = self.forecast.splits["train"]
        targets = train.targets.astype(np.float64)
        weights = train.weights.astype(np.float64)[:, None]
        level = (weights * targets).sum() / (weights.sum()
                                             * targets.shape[1])
        return float((weights * (targets - level) ** 2).mean())

    def test_inputs(self) -> tuple[dict, np.ndarray, np.ndarray]:
        """The test windows as the exported model takes them, their
        targets and loss weights."""
        return ({"values": self.values["test"],
                 "lengths": self.lengths["test"]}, self.labels["test"],
                self.forecast.splits["test"].weights)

    def dataset(self, name: str, *, global_batch_size: int, shuffle: bool,
                seed: int, bucket: bool = False,
                epochs: ShuffleEpoch | None = None) -> tf.data.Dataset:
        """Split `name`'s windows as weighted batches (every window has
        the same length: `bucket` changes nothing)."""
        values, labels = self.values[name], self.labels[name]
        lengths = self.lengths[name]
        weights = self.forecast.splits[name].weights

        def gather(rows, padded):
            return ({"values": values[rows], "lengths": lengths[rows]},
                    labels[rows], weights[rows])

        spec = {"values": tf.TensorSpec(
                    (None, self.sequence_length, self.channels),
                    tf.float32),
                "lengths": tf.TensorSpec((None,), tf.int32)}
        return planned_dataset(
            gather, spec, examples=len(labels),
            length=self.sequence_length, lengths=lengths, bounds=None,
            batch_size=global_batch_size, seed=seed if shuffle else None,
            epochs=epochs or ShuffleEpoch(), label_dtype=tf.float32,
            label_shape=(self.horizon,), weighted=True)


__all__ = ["ForecastArrays"]
