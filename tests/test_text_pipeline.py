"""Standardization (eager and in tf.data), vectorizer, tf.data pipeline."""

import dataclasses
import re
import string

import numpy as np
import tensorflow as tf

from data_pipeline.pipeline import (BUCKETS, VectorizedSplits, bucket_bounds,
                                    bucketed_batches, make_dataset,
                                    vectorize)
from data_pipeline.sources import Split, TextSplits
from data_pipeline.text import make_vectorizer, standardize
from launch.presets import get_preset
from tuning.study.runner import KEEP_VECTORIZED, TrialTrainer
from tuning.trial.run import StudyDir

SAMPLES = [
    "A GREAT film.<br /><br />Loved it!!",
    "Don't watch: it's <b>awful</b>... (really)",
    "Café crème — 10/10 <br />would   see again",
    "",
    "...",
    "<br /><br />",
]


def seed_standardization(text: str) -> str:
    """The notebook's custom_standardization, in plain Python, and what
    rnntune adds: a text left empty becomes the out-of-vocabulary token."""
    lowercase = text.lower()
    stripped_html = lowercase.replace("<br />", " ")
    words = re.sub("[%s]" % re.escape(string.punctuation), "", stripped_html)
    return words if words.strip() else "[UNK]"


def _decode(tensor):
    return [t.decode("utf-8") for t in tensor.numpy()]


def test_standardize_matches_the_seed_eagerly_and_in_tf_data():
    expected = [seed_standardization(t) for t in SAMPLES]
    assert _decode(standardize(tf.constant(SAMPLES))) == expected
    ds = tf.data.Dataset.from_tensor_slices(SAMPLES).map(standardize)
    assert [t.decode("utf-8") for t in ds.as_numpy_iterator()] == expected
    assert expected[0] == "a great film  loved it"


def _split(texts, labels):
    return Split(texts=np.array(texts, dtype=object),
                 labels=np.array(labels, dtype=np.int32))


def test_vectorizer_is_adapted_on_training_texts_only():
    vectorizer = make_vectorizer(
        max_tokens=50, sequence_length=6,
        train_texts=np.array(["good film", "bad film film"], dtype=object))
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:3] == ["", "[UNK]", "film"]
    assert "validationonly" not in vocabulary
    ids = vectorizer(tf.constant(["good validationonly"])).numpy()
    assert ids.tolist() == [[vocabulary.index("good"), 1, 0, 0, 0, 0]]


def test_dataset_batches_every_example_once_per_epoch():
    texts = [f"word{i} common" for i in range(10)]
    split = _split(texts, [i % 3 for i in range(10)])
    vectorizer = make_vectorizer(max_tokens=30, sequence_length=4,
                                 train_texts=split.texts)
    ds = make_dataset(vectorize(split.texts, vectorizer), split.labels,
                      global_batch_size=4, shuffle=True, seed=1)
    assert ds.cardinality().numpy() == 3
    # A fixed prefetch: tf.data's autotuning thread delays the iterator's
    # deletion, and with it the end of `fit`, by up to a minute.
    assert ds.options().autotune.enabled is False
    epochs = [list(ds.as_numpy_iterator()) for _ in range(2)]
    for batches in epochs:
        assert [b[0].shape for b in batches] == [(4, 4), (4, 4), (2, 4)]
        ids = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        # every text once, with its own label (multi-class passes through)
        expected = {tuple(r): label for r, label in
                    zip(vectorize(split.texts, vectorizer), split.labels)}
        assert sorted(map(tuple, ids)) == sorted(expected)
        assert all(expected[tuple(r)] == label
                   for r, label in zip(ids, labels))
    first, second = (np.concatenate([b[0] for b in e]) for e in epochs)
    assert not np.array_equal(first, second)  # reshuffled each epoch


def test_shuffle_is_seeded_and_evaluation_keeps_order():
    split = _split([f"w{i}" for i in range(20)], [0, 1] * 10)
    vectorizer = make_vectorizer(max_tokens=30, sequence_length=2,
                                 train_texts=split.texts)

    def first_epoch(**kwargs):
        ds = make_dataset(vectorize(split.texts, vectorizer), split.labels,
                          global_batch_size=8, **kwargs)
        return np.concatenate([b[0] for b in ds.as_numpy_iterator()])

    assert np.array_equal(first_epoch(shuffle=True, seed=3),
                          first_epoch(shuffle=True, seed=3))
    assert np.array_equal(first_epoch(shuffle=False, seed=0),
                          vectorize(split.texts, vectorizer))


def test_vectorized_splits_adapt_on_train_and_keep_every_split():
    splits = TextSplits(
        train=_split(["good film", "bad film film"], [1, 0]),
        validation=_split(["good validationonly", "bad"], [1, 0]),
        test=None, class_names=("neg", "pos"), description="hand-made")
    vectorized = VectorizedSplits.build(splits, max_tokens=50,
                                        sequence_length=3)
    vectorizer = vectorized.vectorizer
    assert "validationonly" not in vectorizer.get_vocabulary()
    assert set(vectorized.ids) == {"train", "validation"}
    for name in ("train", "validation"):
        split = getattr(splits, name)
        assert vectorized.ids[name].tolist() == vectorizer(
            tf.constant(list(split.texts))).numpy().tolist()
        assert vectorized.labels[name].tolist() == split.labels.tolist()
    (ids, labels), = vectorized.dataset(
        "validation", global_batch_size=2, shuffle=False,
        seed=0).as_numpy_iterator()
    assert ids.tolist() == vectorized.ids["validation"].tolist()
    assert labels.tolist() == [1, 0]


def test_a_studys_trials_share_vectorized_splits(tmp_path):
    runner = TrialTrainer(StudyDir(tmp_path), spec=None)
    data = get_preset("smoke").data
    first = runner.vectorized(data)
    assert runner.vectorized(data) is first
    assert runner.vectorized(dataclasses.replace(data, seed=data.seed))\
        is first
    shorter = runner.vectorized(dataclasses.replace(data, sequence_length=7))
    assert shorter is not first and shorter.ids["train"].shape[1] == 7
    assert shorter.ids["train"].shape[0] == first.ids["train"].shape[0]
    # Only the most recently used few stay in memory.
    for tokens in range(100, 100 + KEEP_VECTORIZED):
        runner.vectorized(dataclasses.replace(data, max_tokens=tokens))
    assert runner.vectorized(data) is not first


def test_trials_that_only_batch_differently_share_vectorized_splits(
        tmp_path):
    runner = TrialTrainer(StudyDir(tmp_path), spec=None)
    data = get_preset("smoke").data
    assert runner.vectorized(dataclasses.replace(
        data, bucket_by_length=False)) is runner.vectorized(data)


def _lengthy_ids(rng, n=300, length=40):
    """Token ids of texts of 1 to `length` tokens, padded at the end."""
    ids = np.zeros((n, length), dtype=np.int64)
    for row, size in zip(ids, rng.integers(1, length + 1, n)):
        row[:size] = rng.integers(2, 50, size)
    return ids


def test_bucketed_batches_are_short_bounded_and_reshuffled():
    rng = np.random.default_rng(0)
    ids = _lengthy_ids(rng)
    labels = rng.integers(0, 2, len(ids)).astype(np.int32)
    lengths = np.count_nonzero(ids, axis=1)
    bounds = bucket_bounds(lengths, 40)
    assert len(bounds) <= BUCKETS and bounds[-1] == 40
    ds = make_dataset(ids, labels, global_batch_size=16, shuffle=True,
                      seed=5, bucket_bounds=bounds)
    assert ds.cardinality().numpy() == bucketed_batches(lengths, bounds, 16)
    rows = {tuple(r[r != 0]): label for r, label in zip(ids, labels)}
    epochs = []
    for _ in range(2):
        batches = list(ds.as_numpy_iterator())
        assert len(batches) == ds.cardinality().numpy()
        members, mixed = [], 0
        # One partial batch at most: each bucket's leftovers are pooled.
        assert sum(len(b[1]) < 16 for b in batches) <= 1
        for batch_ids, batch_labels in batches:
            width = batch_ids.shape[1]
            sizes = np.count_nonzero(batch_ids, axis=1)
            # A bounded set of shapes: the bound of its longest text.
            assert width == min(b for b in bounds if b >= sizes.max())
            below = max([b for b in bounds if b < width], default=0)
            mixed += not (sizes > below).all()  # pooled leftovers
            for row, size, label in zip(batch_ids, sizes, batch_labels):
                assert (row[size:] == 0).all() and (row[:size] != 0).all()
                assert rows[tuple(row[:size])] == label
                members.append(tuple(row[:size]))
        assert sorted(members) == sorted(rows)  # every text once an epoch
        assert mixed <= len(bounds)
        epochs.append([frozenset(map(tuple, b[0])) for b in batches])
    assert epochs[0] != epochs[1]  # texts change batches between epochs
    # Padded steps: well under fixed padding's.
    padded = sum(b[0].size for b in ds.as_numpy_iterator())
    assert padded < 0.75 * ids.size


def test_bucketing_keeps_evaluation_order_within_buckets_and_every_row():
    rng = np.random.default_rng(1)
    ids = _lengthy_ids(rng, n=50)
    labels = np.arange(50, dtype=np.int32)
    bounds = bucket_bounds(np.count_nonzero(ids, axis=1), 40)
    first, second = ([label for _, batch in make_dataset(
        ids, labels, global_batch_size=8, shuffle=False, seed=0,
        bucket_bounds=bounds).as_numpy_iterator() for label in batch]
        for _ in range(2))
    assert first == second and sorted(first) == list(range(50))


def test_a_text_that_standardizes_to_nothing_is_one_unknown_token():
    vectorizer = make_vectorizer(
        max_tokens=30, sequence_length=4,
        train_texts=np.array(["good film", "...", "bad"], dtype=object))
    assert vectorizer.get_vocabulary().count("[UNK]") == 1
    ids = vectorize(np.array(["...", "<br /><br />", "good ..."],
                             dtype=object), vectorizer)
    assert ids[:, 0].tolist()[:2] == [1, 1] and (ids[:2, 1:] == 0).all()
    assert (ids.max(axis=1) > 0).all()  # no row is all padding
