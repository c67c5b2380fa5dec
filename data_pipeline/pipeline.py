"""`tf.data` pipelines: vectorize once, keep the ids, shuffle, batch,
prefetch."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from data_pipeline.sources import TextSplits
from data_pipeline.text import make_vectorizer

VECTORIZE_BATCH = 1024


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
                seed: int) -> tf.data.Dataset:
        """The split `name` as batches; see `make_dataset`."""
        return make_dataset(self.ids[name], self.labels[name],
                            global_batch_size=global_batch_size,
                            shuffle=shuffle, seed=seed)


def make_dataset(ids: np.ndarray, labels: np.ndarray, *,
                 global_batch_size: int, shuffle: bool,
                 seed: int) -> tf.data.Dataset:
    """Yields `(token_ids, label)` batches of `global_batch_size`.

    Args:
        ids: token ids, one row per example (`vectorize`).
        labels: integer labels.
        global_batch_size: examples per step across all replicas.
        shuffle: reshuffle every epoch (training) or keep order.
        seed: shuffle seed.

    Returns:
        A dataset of `int64[batch, sequence_length]` ids and `int32[batch]`
        labels.
    """
    ds = tf.data.Dataset.from_tensor_slices((ids, labels))
    if shuffle:
        ds = ds.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(global_batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
