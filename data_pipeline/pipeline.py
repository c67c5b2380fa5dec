"""`tf.data` pipelines: vectorize once, keep the ids, shuffle, batch
(by length, optionally), prefetch.

A shuffled dataset draws each epoch's order from `(seed, epoch)` alone
(`ShuffleEpoch`), so a run resumed at epoch `e` sees the orders that an
uninterrupted run saw from `e` on.
"""

import dataclasses
import functools
from collections.abc import Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from data_pipeline.sources import DataInfo, TextSplits, named_splits
from data_pipeline.text import adapt_vocabulary, text_batches, vectorizer_for

VECTORIZE_BATCH = 1024
BUCKETS = 12  # padded lengths of a bucketed split: tf.function traces
# Batches ready ahead of the step. A fixed buffer rather than tf.data's
# autotuning: one Python generator makes the batches, so there is nothing
# to tune, and the autotuning thread holds up deleting the iterator (at
# the end of every `fit`) until it next wakes, up to a minute later.
PREFETCH_BATCHES = 4
_NO_AUTOTUNE = tf.data.Options()
_NO_AUTOTUNE.autotune.enabled = False


def vectorize(texts: np.ndarray,
              vectorizer: keras.layers.TextVectorization, *,
              dtype=np.int64) -> np.ndarray:
    """Token ids of `texts` as one `dtype` array."""
    return np.concatenate(list(vectorized_batches(texts, vectorizer,
                                                  dtype=dtype)))


def vectorized_batches(texts, vectorizer: keras.layers.TextVectorization,
                       *, dtype=np.int64) -> Iterator[np.ndarray]:
    """Token ids of `texts`, `VECTORIZE_BATCH` rows at a time, batches
    vectorized in parallel, in order."""
    ds = text_batches(texts, VECTORIZE_BATCH)
    ds = ds.map(vectorizer, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    for batch in ds:
        yield batch.numpy().astype(dtype, copy=False)


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


def id_dtype(vocabulary_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every token id."""
    return np.dtype(np.uint16 if vocabulary_size <= 2 ** 16 else np.uint32)


@dataclasses.dataclass(frozen=True)
class VectorizedSplits:
    """Every split turned into token ids once, with the vocabulary
    (adapted on the training texts only) that did it. Trials with the same
    data settings share one; from the data cache its arrays are memory
    mapped, so the trials of a node share their pages too.

    Attributes:
        vocabulary: the tokens, by id (0 is padding, 1 `[UNK]`).
        max_tokens: the vocabulary size asked for (`data.max_tokens`).
        ids: split name -> token ids, `id_dtype` [examples, length],
            padding (0) at the end.
        labels: split name -> int32 [examples].
        lengths: split name -> tokens per text, int32 [examples].
        info: what the run records about the data.
        test_texts: the test split's raw texts (for scoring an exported
            model as a user runs it); None without a test split.
    """

    vocabulary: tuple[str, ...]
    max_tokens: int
    ids: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    info: DataInfo
    test_texts: Sequence[str] | None = None

    kind = "text"  # what `DataConfig.kind` it holds

    @property
    def sequence_length(self) -> int:
        return self.ids["train"].shape[1]

    def examples(self, name: str) -> int:
        return len(self.labels[name])

    @functools.cached_property
    def vectorizer(self) -> keras.layers.TextVectorization:
        """The layer that turns raw texts into these ids."""
        return vectorizer_for(list(self.vocabulary),
                              max_tokens=self.max_tokens,
                              sequence_length=self.sequence_length)

    @functools.cached_property  # read for every split and config.json
    def bucket_bounds(self) -> tuple[int, ...]:
        """The padded lengths of bucketed batches: `BUCKETS` quantiles of
        the training texts' lengths, the last being the full length."""
        return bucket_bounds(self.lengths["train"], self.sequence_length)

    def test_inputs(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The test split as the exported model takes it (raw texts) and
        its labels (None: no test split)."""
        if self.test_texts is None:
            return None
        return (np.asarray(list(self.test_texts), dtype=object),
                np.asarray(self.labels["test"]))

    @classmethod
    def build(cls, splits: TextSplits, *, max_tokens: int,
              sequence_length: int) -> "VectorizedSplits":
        """Adapts the vocabulary on `splits.train` and vectorizes every
        split, in memory (`data_pipeline.cache` writes them to disk)."""
        vocabulary = adapt_vocabulary(splits.train.texts,
                                      max_tokens=max_tokens)
        vectorizer = vectorizer_for(vocabulary, max_tokens=max_tokens,
                                    sequence_length=sequence_length)
        named = named_splits(splits)
        ids = {n: vectorize(s.texts, vectorizer,
                            dtype=id_dtype(len(vocabulary)))
               for n, s in named.items()}
        return cls(vocabulary=tuple(vocabulary), max_tokens=max_tokens,
                   ids=ids, labels={n: s.labels for n, s in named.items()},
                   lengths={n: text_lengths(a) for n, a in ids.items()},
                   info=DataInfo.of(splits),
                   test_texts=(None if splits.test is None
                               else splits.test.texts))

    def dataset(self, name: str, *, global_batch_size: int, shuffle: bool,
                seed: int, bucket: bool = False,
                epochs: ShuffleEpoch | None = None) -> tf.data.Dataset:
        """The split `name` as batches; see `make_dataset`."""
        return make_dataset(
            self.ids[name], self.labels[name],
            global_batch_size=global_batch_size, shuffle=shuffle, seed=seed,
            bucket_bounds=self.bucket_bounds if bucket else None,
            epochs=epochs, lengths=self.lengths[name])


def text_lengths(ids: np.ndarray) -> np.ndarray:
    """Tokens per row, int32 (padding, id 0, sits after the text)."""
    return np.count_nonzero(ids, axis=1).astype(np.int32)


def padded_share(lengths: np.ndarray, sequence_length: int,
                 bounds: tuple[int, ...] | None = None) -> float:
    """The share of texts (of `lengths` tokens) that end before their
    batch does: padding fills their last steps (at their bucket's bound
    with `bounds`, else at `sequence_length`)."""
    if not len(lengths):
        return 0.0
    padded = (np.asarray(bounds)[np.searchsorted(bounds,
                                                 np.maximum(lengths, 1))]
              if bounds else sequence_length)
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
                 epochs: ShuffleEpoch | None = None,
                 lengths: np.ndarray | None = None) -> tf.data.Dataset:
    """Yields `(token_ids, label)` batches of `global_batch_size`.

    Each epoch is planned as row indices (`ShuffleEpoch`), and each batch
    gathered from `ids` as it is needed: a memory-mapped `ids` is never
    copied whole, and no shuffle buffer holds examples.

    Args:
        ids: token ids, one row per example, padded at the end
            (`vectorize`), of any integer type.
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
        lengths: tokens per row (`text_lengths(ids)` if None).

    Returns:
        A dataset of `int32[batch, length]` ids (padding still at the end,
        as masks and cuDNN want it) and `int32[batch]` labels.
    """
    if lengths is None and bucket_bounds is not None:
        lengths = text_lengths(ids)

    def gather(rows, length):
        return (ids[rows, :length].astype(np.int32),
                np.asarray(labels[rows], dtype=np.int32))

    return planned_dataset(
        gather, tf.TensorSpec((None, ids.shape[1] if bucket_bounds is None
                               else None), tf.int32),
        examples=len(ids), length=ids.shape[1], lengths=lengths,
        bounds=bucket_bounds, batch_size=global_batch_size,
        seed=seed if shuffle else None, epochs=epochs or ShuffleEpoch())


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


def bucketed_batches(lengths: np.ndarray, bounds: tuple[int, ...],
                     batch_size: int) -> int:
    """How many batches an epoch of `make_dataset` has with these bounds
    for texts of `lengths` tokens (the same every epoch: a text's bucket
    never changes)."""
    return len(bucketed_epoch(lengths, bounds, batch_size, None))


def planned_dataset(gather, input_spec, *, examples: int, length: int,
                    lengths: np.ndarray | None,
                    bounds: tuple[int, ...] | None, batch_size: int,
                    seed: int | None, epochs: ShuffleEpoch,
                    label_dtype: tf.DType = tf.int32,
                    label_shape: tuple[int, ...] = (),
                    weighted: bool = False) -> tf.data.Dataset:
    """Batches planned in NumPy an epoch at a time: epoch `e`'s by an
    `rng` seeded with `(seed, e)` (no seed: a fixed order), each gathered
    by `gather(rows, padded_length)` as `(inputs, labels)`, inputs as
    `input_spec` says (ids for texts, values and lengths for series),
    labels of `label_dtype` (int32 classes, float32 regression targets)
    and `label_shape` each (a forecast's horizon); `weighted`: `gather`
    adds each row's float32 loss weight.
    """

    def batches():
        # As the pass begins (`ShuffleEpoch.set` comes before).
        rng = (np.random.default_rng([seed, epochs.take()])
               if seed is not None else None)
        plan = (_plain_epoch(examples, length, batch_size, rng)
                if bounds is None
                else bucketed_epoch(lengths, bounds, batch_size, rng))
        for rows, padded in plan:
            yield gather(rows, padded)

    steps = (-(-examples // batch_size) if bounds is None
             else bucketed_batches(lengths, bounds, batch_size))
    signature = (input_spec, tf.TensorSpec((None, *label_shape), label_dtype))
    if weighted:
        signature += (tf.TensorSpec((None,), tf.float32),)
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # Said, Keras runs every batch of every epoch (and knows the steps).
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(PREFETCH_BATCHES).with_options(_NO_AUTOTUNE)
