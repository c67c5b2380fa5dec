"""`tf.data` pipelines: vectorize once, keep the ids, shuffle, batch
(by length, optionally), prefetch."""

import dataclasses
import functools
import itertools

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
                seed: int, bucket: bool = False) -> tf.data.Dataset:
        """The split `name` as batches; see `make_dataset`."""
        return make_dataset(
            self.ids[name], self.labels[name],
            global_batch_size=global_batch_size, shuffle=shuffle, seed=seed,
            bucket_bounds=self.bucket_bounds if bucket else None)


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
                 bucket_bounds: tuple[int, ...] | None = None
                 ) -> tf.data.Dataset:
    """Yields `(token_ids, label)` batches of `global_batch_size`.

    Args:
        ids: token ids, one row per example, padded at the end
            (`vectorize`).
        labels: integer labels.
        global_batch_size: examples per step across all replicas.
        shuffle: reshuffle every epoch (training) or keep order.
        seed: shuffle seed.
        bucket_bounds: None pads every batch to the full length; else
            batches hold texts of one length bucket (`bucket_bounds`),
            padded to that bucket's bound: a few fixed shapes, little
            padding (see `bucketed_epoch`).

    Returns:
        A dataset of `int64[batch, length]` ids (padding still at the end,
        as masks and cuDNN want it) and `int32[batch]` labels.
    """
    if bucket_bounds is not None:
        return _bucketed_dataset(ids, labels, bucket_bounds,
                                 global_batch_size, shuffle, seed)
    ds = tf.data.Dataset.from_tensor_slices((ids, labels))
    if shuffle:  # before batching: every epoch, other batch mates
        ds = ds.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(global_batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


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


def _bucketed_dataset(ids, labels, bounds, batch_size, shuffle, seed):
    lengths = text_lengths(ids)
    epochs = itertools.count()  # each pass over the data, a new order

    def batches():
        rng = (np.random.default_rng([seed, next(epochs)]) if shuffle
               else None)
        for rows, length in bucketed_epoch(lengths, bounds, batch_size,
                                           rng):
            yield ids[rows, :length], labels[rows]

    ds = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec((None, None), tf.as_dtype(ids.dtype)),
        tf.TensorSpec((None,), tf.as_dtype(labels.dtype))))
    # Said, Keras runs every batch of every epoch (and knows the steps).
    ds = ds.apply(tf.data.experimental.assert_cardinality(
        bucketed_batches(ids, bounds, batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)
