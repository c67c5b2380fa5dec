"""Standardization (eager and in tf.data), vectorizer, tf.data pipeline."""

import dataclasses
import re
import string

import numpy as np
import tensorflow as tf

from data_pipeline.pipeline import VectorizedSplits, make_dataset, vectorize
from data_pipeline.sources import Split, TextSplits
from data_pipeline.text import make_vectorizer, standardize
from launch.presets import get_preset
from tuning.study.runner import KEEP_VECTORIZED, TrialRunner

SAMPLES = [
    "A GREAT film.<br /><br />Loved it!!",
    "Don't watch: it's <b>awful</b>... (really)",
    "Café crème — 10/10 <br />would   see again",
    "",
]


def seed_standardization(text: str) -> str:
    """The notebook's custom_standardization, in plain Python."""
    lowercase = text.lower()
    stripped_html = lowercase.replace("<br />", " ")
    return re.sub("[%s]" % re.escape(string.punctuation), "", stripped_html)


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
    runner = TrialRunner(tmp_path, spec=None, table=None)
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
