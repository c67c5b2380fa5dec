"""`tf.data` pipelines: vectorize once, cache, shuffle, batch, prefetch."""

import keras
import numpy as np
import tensorflow as tf

from data_pipeline.sources import Split

VECTORIZE_BATCH = 1024


def make_dataset(split: Split, vectorizer: keras.layers.TextVectorization,
                 *, global_batch_size: int, shuffle: bool, seed: int,
                 drop_remainder: bool = False) -> tf.data.Dataset:
    """Yields `(token_ids, label)` batches of `global_batch_size`.

    Args:
        split: texts and integer labels.
        vectorizer: an adapted `TextVectorization`.
        global_batch_size: examples per step across all replicas.
        shuffle: reshuffle every epoch (training) or keep order.
        seed: shuffle seed.
        drop_remainder: drop a last partial batch, for static shapes.

    Returns:
        A dataset of `int64[batch, sequence_length]` ids and `int32[batch]`
        labels.
    """
    ds = tf.data.Dataset.from_tensor_slices(
        (split.texts, split.labels))
    ds = ds.batch(VECTORIZE_BATCH)
    ds = ds.map(lambda texts, labels: (vectorizer(texts), labels),
                num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.unbatch()
    # unbatch() forgets the length; Keras needs it to count steps per epoch.
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(split)))
    # Cache the ids, not the strings: vectorization runs in the first epoch
    # only, and shuffling after the cache still reshuffles every epoch.
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(global_batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def vectorize(texts: np.ndarray,
              vectorizer: keras.layers.TextVectorization) -> np.ndarray:
    """Token ids of `texts` as one array, batch by batch."""
    ds = tf.data.Dataset.from_tensor_slices(texts)
    ds = ds.batch(VECTORIZE_BATCH).map(vectorizer)
    return np.concatenate([batch.numpy() for batch in ds])
