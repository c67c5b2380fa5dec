"""Numeric series prepared once for every run on them: each split padded
into one array, with the normalization statistics of the training split.

    arrays = SeriesArrays.build(load_series_splits(data), data)
    arrays.dataset("train", global_batch_size=64, shuffle=True, seed=1)

The series counterpart of `VectorizedSplits`, with the same interface the
trial function reads (`labels`, `lengths`, `info`, `examples`,
`sequence_length`, `bucket_bounds`, `dataset`, `test_inputs`). Series are
small next to a text corpus (a UCR/UEA set is kilobytes to a few
megabytes), so they are prepared in the process that trains, never cached
on disk.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from data_pipeline.config import DataConfig
from data_pipeline.pipeline import (ShuffleEpoch, bucket_bounds,
                                    planned_dataset)
from data_pipeline.series import SeriesSplit, SeriesSplits, pad_series
from data_pipeline.sources import DataInfo


def channel_statistics(split: SeriesSplit, length: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) float32 per channel of `split`'s real steps (its
    first `length` steps at most, as the model sees them): padding never
    counts, and nothing outside the split does."""
    steps = np.concatenate([s[:length] for s in split.series]).astype(
        np.float64)
    return (steps.mean(axis=0).astype(np.float32),
            steps.var(axis=0).astype(np.float32))


@dataclasses.dataclass(frozen=True)
class SeriesArrays:
    """Every split's series right-padded with zeros into one array.

    Attributes:
        values: split name -> float32 [series, steps, channels], raw
            (the model normalizes), padding at the end.
        labels: split name -> int32 [series] class indices, or float32
            targets (regression).
        lengths: split name -> real steps of each series, int32.
        info: what the run records about the data.
        mean, variance: float32 [channels], of the training split's real
            steps (`channel_statistics`); 0 and 1 unless
            `data.normalize=channel`.
        target_mean, target_std: regression: of the training split's
            targets (the model's output layer is scaled by them, so it
            starts at the right scale and predicts raw values); 0 and 1
            for classification.
    """

    values: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    info: DataInfo
    mean: np.ndarray
    variance: np.ndarray
    target_mean: float = 0.0
    target_std: float = 1.0

    kind = "series"

    @property
    def sequence_length(self) -> int:
        return self.values["train"].shape[1]

    @property
    def channels(self) -> int:
        return self.values["train"].shape[2]

    def examples(self, name: str) -> int:
        return len(self.labels[name])

    @property
    def baseline_loss(self) -> float:
        """Regression: the training loss (mean squared error) of
        predicting the training targets' mean, their variance."""
        return self.target_std ** 2

    @functools.cached_property
    def bucket_bounds(self) -> tuple[int, ...]:
        """The padded lengths of bucketed batches (as `VectorizedSplits`'
        are), from the training series' lengths."""
        return bucket_bounds(self.lengths["train"], self.sequence_length)

    def test_inputs(self) -> tuple[dict, np.ndarray] | None:
        """The test split as the exported model takes it (raw values and
        lengths) and its labels (None: no test split)."""
        if "test" not in self.values:
            return None
        return ({"values": self.values["test"],
                 "lengths": self.lengths["test"]}, self.labels["test"])

    @classmethod
    def build(cls, splits: SeriesSplits, data: DataConfig) -> "SeriesArrays":
        """Pads every split to the longest series (at most
        `data.sequence_length` steps, a longer series keeping its first)
        and fits the normalization on the training split."""
        named = {name: getattr(splits, name)
                 for name in ("train", "validation", "test")
                 if getattr(splits, name) is not None}
        longest = max(int(split.lengths.max()) for split in named.values())
        length = min(longest, data.sequence_length)
        values, lengths = {}, {}
        for name, split in named.items():
            values[name], lengths[name] = pad_series(split.series, length)
        if data.normalize == "channel":
            mean, variance = channel_statistics(splits.train, length)
        else:
            mean = np.zeros(splits.channels, np.float32)
            variance = np.ones(splits.channels, np.float32)
        targets = {}
        if splits.train.labels.dtype.kind == "f":  # regression
            train = splits.train.labels.astype(np.float64)
            targets = {"target_mean": float(train.mean()),
                       "target_std": float(train.std()) or 1.0}
        return cls(values=values,
                   labels={n: s.labels for n, s in named.items()},
                   lengths=lengths, info=DataInfo.of(splits), mean=mean,
                   variance=variance, **targets)

    def dataset(self, name: str, *, global_batch_size: int, shuffle: bool,
                seed: int, bucket: bool = False,
                epochs: ShuffleEpoch | None = None) -> tf.data.Dataset:
        """The split `name` as batches of `({"values", "lengths"},
        labels)`, planned as `data_pipeline.pipeline.make_dataset` plans
        texts' (bucketed by length with `bucket`)."""
        values, labels = self.values[name], self.labels[name]
        lengths = self.lengths[name]

        def gather(rows, padded):
            return ({"values": values[rows, :padded],
                     "lengths": np.minimum(lengths[rows], padded)},
                    labels[rows])

        width = None if bucket else self.sequence_length
        spec = {"values": tf.TensorSpec((None, width, self.channels),
                                        tf.float32),
                "lengths": tf.TensorSpec((None,), tf.int32)}
        return planned_dataset(
            gather, spec, examples=len(labels),
            length=self.sequence_length, lengths=lengths,
            bounds=self.bucket_bounds if bucket else None,
            batch_size=global_batch_size, seed=seed if shuffle else None,
            epochs=epochs or ShuffleEpoch(),
            label_dtype=tf.as_dtype(labels.dtype))


__all__ = ["SeriesArrays", "channel_statistics"]
