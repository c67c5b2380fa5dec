"""`tf.data` pipelines: vectorize once, keep the ids, shuffle, batch
(by length, optionally), prefetch.

A shuffled dataset draws each epoch's order from `(seed, epoch)` alone
(`ShuffleEpoch`), so a run resumed at epoch `e` sees the orders that an
uninterrupted run saw from `e` on.
"""

import dataclasses
import functools

import keras
import numpy as np
import tensorflow as tf

from data_pipeline.sources import TextSplits
from data_pipeline.text import make_vectorizer

VECTORIZE_BATCH = 1024
BUCKETS = 12  # padded lengths of a bucketed split: tf.function traces


def vectorize(texts: np.ndarray,
              vectorizer: keras.layers.TextVectorization) -> np.ndarray:
    """Token ids of `texts` as one array, batch by batch in parallel."""
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(VECTORIZE_BATCH)
    ds = ds.map(vectorizer, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return np.concatenate([batch.numpy() for batch in ds])


class ShuffleEpoch:
    """Which epoch's order a shuffled dataset draws at its next pass.

    Epoch `e`'s order is a function of `(seed, e)` alone. Left alone, each
    pass over the data is the next epoch (0, 1, ...); `set(e)` before a
    pass makes it epoch `e`, whatever passes came before: a run resumed
    at epoch `e`, or a pass that is no epoch (a distribution strategy's
    first look at a batch), as PyTorch's `DistributedSampler.set_epoch`.
    """

    def __init__(self):
        self._next = 0

    def set(self, epoch: int) -> None:
        """Makes the next pass epoch `epoch` (0-based)."""
        self._next = epoch

    def take(self) -> int:
        """The epoch of the pass that begins now."""
        epoch, self._next = self._next, self._next + 1
        return epoch


@dataclasses.dataclass(frozen=True)
class VectorizedSplits:
    """Every split turned into token ids once, with the vectorizer (adapted
    on the training texts only) that did it. Trials with the same data
    settings share one."""

    vectorizer: keras.layers.TextVectorization
    ids: dict[str, np.ndarray]  # split name -> int64[examples, length]
    labels: dict[str, np.ndarray]  # split name -> int32[examples]

    @functools.cached_property  # read for every split and config.json
    def bucket_bounds(self) -> tuple[int, ...]:
        """The padded lengths of bucketed batches: `BUCKETS` quantiles of
        the training texts' lengths, the last being the full length."""
        return bucket_bounds(text_lengths(self.ids["train"]),
                             self.ids["train"].shape[1])

    @classmethod
    def build(cls, splits: TextSplits, *, max_tokens: int,
              sequence_length: int) -> "VectorizedSplits":
        vectorizer = make_vectorizer(max_tokens=max_tokens,
                                     sequence_length=sequence_length,
                                     train_texts=splits.train.texts)
        named = {name: split for name, split in (
            ("train", splits.train), ("validation", splits.validation),
            ("test", splits.test)) if split is not None}
        return cls(vectorizer,
                   {n: vectorize(s.texts, vectorizer) for n, s in
                    named.items()},
                   {n: s.labels for n, s in named.items()})

    def dataset(self, name: str, *, global_batch_size: int, shuffle: bool,
                seed: int, bucket: bool = False,
                epochs: ShuffleEpoch | None = None) -> tf.data.Dataset:
        """The split `name` as batches; see `make_dataset`."""
        return make_dataset(
            self.ids[name], self.labels[name],
            global_batch_size=global_batch_size, shuffle=shuffle, seed=seed,
            bucket_bounds=self.bucket_bounds if bucket else None,
            epochs=epochs)


def text_lengths(ids: np.ndarray) -> np.ndarray:
    """Tokens per row (padding, id 0, sits after the text)."""
    return np.count_nonzero(ids, axis=1)


def padded_share(ids: np.ndarray,
                 bounds: tuple[int, ...] | None = None) -> float:
    """The share of texts that end before their batch does: padding fills
    their last steps (at their bucket's bound with `bounds`, else at the
    full length)."""
    if not len(ids):
        return 0.0
    lengths = text_lengths(ids)
    padded = (np.asarray(bounds)[np.searchsorted(bounds,
                                                 np.maximum(lengths, 1))]
              if bounds else ids.shape[1])
    return float(np.mean(lengths < padded))


def bucket_bounds(lengths: np.ndarray, sequence_length: int, *,
                  buckets: int = BUCKETS) -> tuple[int, ...]:
    """Upper bounds of `buckets` equal-count length buckets, the last one
    `sequence_length` (fewer when lengths repeat)."""
    quantiles = np.quantile(np.maximum(lengths, 1),
                            np.arange(1, buckets) / buckets)
    inner = sorted({int(np.ceil(q)) for q in quantiles} - {sequence_length})
    return (*[b for b in inner if b < sequence_length], sequence_length)


def make_dataset(ids: np.ndarray, labels: np.ndarray, *,
                 global_batch_size: int, shuffle: bool, seed: int,
                 bucket_bounds: tuple[int, ...] | None = None,
                 epochs: ShuffleEpoch | None = None) -> tf.data.Dataset:
    """Yields `(token_ids, label)` batches of `global_batch_size`.

    Args:
        ids: token ids, one row per example, padded at the end
            (`vectorize`).
        labels: integer labels.
        global_batch_size: examples per step across all replicas.
        shuffle: reshuffle every epoch (training) or keep order.
        seed: shuffle seed; epoch `e`'s order is drawn from `(seed, e)`.
        bucket_bounds: None pads every batch to the full length; else
            batches hold texts of one length bucket (`bucket_bounds`),
            padded to that bucket's bound: a few fixed shapes, little
            padding (see `bucketed_epoch`).
        epochs: says which epoch each pass is (`ShuffleEpoch`); None
            counts the passes from 0. Unshuffled, the order is fixed.

    Returns:
        A dataset of `int64[batch, length]` ids (padding still at the end,
        as masks and cuDNN want it) and `int32[batch]` labels.
    """
    if not shuffle and bucket_bounds is None:
        ds = tf.data.Dataset.from_tensor_slices((ids, labels))
        ds = ds.batch(global_batch_size)
        return ds.prefetch(tf.data.AUTOTUNE)
    return _planned_dataset(ids, labels, bucket_bounds, global_batch_size,
                            seed if shuffle else None,
                            epochs or ShuffleEpoch())


def _plain_epoch(examples: int, length: int, batch_size: int,
                rng: np.random.Generator | None
                ) -> list[tuple[np.ndarray, int]]:
    """One epoch's batches without buckets: `(row indices, length)` each,
    in `rng`'s order (else in order); the last batch may be partial."""
    order = (rng.permutation(examples) if rng is not None
             else np.arange(examples))
    return [(order[i:i + batch_size], length)
            for i in range(0, examples, batch_size)]


def bucketed_epoch(lengths: np.ndarray, bounds: tuple[int, ...],
                   batch_size: int, rng: np.random.Generator | None
                   ) -> list[tuple[np.ndarray, int]]:
    """One epoch's batches: `(row indices, padded length)` each.

    Each bucket's texts (length up to its bound, above the one below) are
    cut into full batches padded to the bound. What is left of every
    bucket is pooled, ordered by length and cut into batches too, each
    padded to the largest bound among its texts, so an epoch has one
    partial batch at most (a batch of a few texts would jolt the weights
    as much as a full one). With `rng`, texts are shuffled before cutting
    and the batches after, every epoch anew; without, the order is fixed.
    """
    buckets = np.searchsorted(bounds, np.maximum(lengths, 1))
    order = (rng.permutation(len(lengths)) if rng is not None
             else np.arange(len(lengths)))
    batches, left = [], []
    for bucket, bound in enumerate(bounds):
        members = order[buckets[order] == bucket]
        full = len(members) - len(members) % batch_size
        batches += [(members[i:i + batch_size], bound)
                    for i in range(0, full, batch_size)]
        left.append(members[full:])
    left = np.concatenate(left)
    left = left[np.argsort(lengths[left], kind="stable")]
    for i in range(0, len(left), batch_size):
        rows = left[i:i + batch_size]
        batches.append((rows, bounds[buckets[rows].max()]))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def bucketed_batches(ids: np.ndarray, bounds: tuple[int, ...],
                     batch_size: int) -> int:
    """How many batches an epoch of `make_dataset` has with these bounds
    (the same every epoch: a text's bucket never changes)."""
    return len(bucketed_epoch(text_lengths(ids), bounds, batch_size, None))


def _planned_dataset(ids, labels, bounds, batch_size, seed, epochs):
    """Batches planned in NumPy an epoch at a time: epoch `e`'s by an
    `rng` seeded with `(seed, e)` (no seed: a fixed order)."""
    lengths = text_lengths(ids)

    def batches():
        # As the pass begins (`ShuffleEpoch.set` comes before).
        rng = (np.random.default_rng([seed, epochs.take()])
               if seed is not None else None)
        plan = (_plain_epoch(len(ids), ids.shape[1], batch_size, rng)
                if bounds is None
                else bucketed_epoch(lengths, bounds, batch_size, rng))
        for rows, length in plan:
            yield ids[rows, :length], labels[rows]

    # Without buckets, every batch has the full length: a static shape.
    width = ids.shape[1] if bounds is None else None
    steps = (-(-len(ids) // batch_size) if bounds is None
             else bucketed_batches(ids, bounds, batch_size))
    ds = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec((None, width), tf.as_dtype(ids.dtype)),
        tf.TensorSpec((None,), tf.as_dtype(labels.dtype))))
    # Said, Keras runs every batch of every epoch (and knows the steps).
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(tf.data.AUTOTUNE)
