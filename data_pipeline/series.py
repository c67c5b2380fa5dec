"""Numeric series for a run (no TensorFlow): any supported file read by
its suffix (`series_readers`), the embedded sets, and the train,
validation and test splits.

    found = read_series(pathlib.Path("BasicMotions_TRAIN.ts"))
    found.series[0].shape, found.labels[0]      # (100, 6), 'standing'
    values, lengths = found.padded()            # right-padded, never resampled

The embedded data sets are UCR/UEA and TSER (regression) archive files
shipped in sktime's wheel, read from the installed package without
importing it (`embedded_series`).
"""

import dataclasses
import hashlib
import importlib.util
import pathlib
from collections.abc import Sequence

import numpy as np

from data_pipeline.config import DataConfig, DataError
from data_pipeline.series_readers import (SeriesSet, pad_series,
                                          read_long_csv, read_npz, read_ts,
                                          read_wide_csv, series_lengths)

# Embedded sets (sources and presets): name -> sktime's directory and file
# stem.
EMBEDDED = {
    "japanese_vowels": "JapaneseVowels",
    "basic_motions": "BasicMotions",
    "tecator": "Tecator",
    "covid_3_month": "Covid3Month",
}
# The package whose wheel ships them (as data files: never imported).
EMBEDDED_PACKAGE = "sktime"


def embedded_series(name: str) -> tuple[pathlib.Path, pathlib.Path]:
    """The shipped (train, test) `.ts` files of embedded set `name`, from
    the installed sktime package (not imported).

    Raises:
        DataError: an unknown name, or sktime is not installed.
    """
    if name not in EMBEDDED:
        raise DataError(f"no embedded series set {name!r}; expected one of "
                        f"{', '.join(EMBEDDED)}")
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the {name} data ships in the {EMBEDDED_PACKAGE} "
                        "package: pip install 'rnntune[series]'")
    stem = EMBEDDED[name]
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    folder = root / "datasets" / "data" / stem
    return folder / f"{stem}_TRAIN.ts", folder / f"{stem}_TEST.ts"


def read_series(path: pathlib.Path, *, task: str | None = None,
                channels_first: bool = False,
                value_columns: Sequence[str] = (), id_column: str = "id",
                time_column: str = "time",
                label_column: str = "label") -> SeriesSet:
    """A series file of any supported format, by its suffix: `.ts`,
    `.npz`, or `.csv` (long with `value_columns`, else wide). `task`
    (`classification` or `regression`) is needed where the file does not
    say it (`.ts` files do); `unlabelled` reads series to predict, whose
    labels (if any) are left out.

    Raises:
        DataError: an unsupported suffix, or what the reader raises.
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix == ".ts":
        if task == "unlabelled":
            return dataclasses.replace(read_ts(path, labelled=False),
                                       labels=None, targets=None,
                                       class_names=())
        found = read_ts(path)
        if task is not None and task != found.task:
            raise DataError(f"{path}: a {found.task} file (its header); "
                            f"data.task is {task}")
        return found
    if task not in ("classification", "regression", "unlabelled"):
        raise DataError(f"{path}: data.task must be classification or "
                        f"regression for a {suffix or 'suffix-less'} file")
    if suffix == ".npz":
        return read_npz(path, task=task, channels_first=channels_first)
    if suffix == ".csv":
        if value_columns:
            return read_long_csv(path, task=task,
                                 value_columns=value_columns,
                                 id_column=id_column,
                                 time_column=time_column,
                                 label_column=label_column)
        return read_wide_csv(path, task=task, label_column=label_column)
    raise DataError(f"{path}: unsupported suffix {suffix or '(none)'!r}; "
                    "expected .ts, .npz or .csv")


@dataclasses.dataclass(frozen=True)
class SeriesSplit:
    """Series with integer labels indexing `SeriesSplits.class_names`
    (classification) or float32 targets (regression)."""

    series: np.ndarray  # object array of float32 [time, channels]
    labels: np.ndarray  # int32, or float32 targets

    def __len__(self) -> int:
        return len(self.series)

    @property
    def lengths(self) -> np.ndarray:
        return series_lengths(self.series)

    def take(self, idx: np.ndarray) -> "SeriesSplit":
        return SeriesSplit(series=self.series[idx], labels=self.labels[idx])

    def fingerprint(self) -> str:
        """A SHA-256 of the series (values and shapes) and labels in
        order, as `Split.fingerprint` is of texts."""
        digest = hashlib.sha256()
        for series, label in zip(self.series, self.labels):
            digest.update(np.asarray(series.shape, np.int64).tobytes())
            digest.update(np.ascontiguousarray(series, np.float32).tobytes())
            digest.update(
                np.float64(label).tobytes() if self.labels.dtype.kind == "f"
                else int(label).to_bytes(8, "little", signed=True))
        return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class SeriesSplits:
    """The series counterpart of `TextSplits` (the same fields)."""

    train: SeriesSplit
    validation: SeriesSplit
    test: SeriesSplit | None
    class_names: tuple[str, ...]
    description: str
    notes: tuple[str, ...] = ()
    stats: dict = dataclasses.field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.train.series[0].shape[1]


def _split_of(found: SeriesSet, class_names: Sequence[str]) -> SeriesSplit:
    series = np.empty(len(found), dtype=object)
    series[:] = found.series
    if found.targets is not None:
        return SeriesSplit(series=series,
                           labels=found.targets.astype(np.float32))
    index = {name: i for i, name in enumerate(class_names)}
    return SeriesSplit(series=series, labels=np.array(
        [index[label] for label in found.labels], np.int32))


def load_series_splits(data: DataConfig) -> SeriesSplits:
    """Reads `data`'s series and splits them as `load_splits` splits
    texts: a shipped test split is kept (capped by `max_examples` alike),
    else `test_split` of the series go to test; then `validation_split`
    of the rest to validation, class by class, seeded by `data.seed`.

    Raises:
        DataError: a file missing or malformed, a test split with a class
            or channel count the training file lacks, too few series.
    """
    from data_pipeline.sources import split_pool

    if data.source in EMBEDDED:
        train_path, test_path = embedded_series(data.source)
        description = (f"{EMBEDDED[data.source]} (embedded from "
                       f"{EMBEDDED_PACKAGE})")
    else:
        train_path = pathlib.Path(data.path).expanduser()
        test_path = (pathlib.Path(data.test_path).expanduser()
                     if data.test_path else None)
        description = str(train_path)

    def read(path):
        return read_series(
            path, task=data.task, channels_first=data.channels_first,
            value_columns=[c.strip() for c in data.value_columns.split(",")
                           if c.strip()],
            id_column=data.id_column, time_column=data.time_column,
            label_column=data.label_column)

    pool = read(train_path)
    test = read(test_path) if test_path is not None else None
    class_names = pool.class_names
    if test is not None and test.labels is not None:
        unknown = sorted(set(test.labels) - set(class_names))
        if unknown:
            raise DataError(f"{test_path}: class {unknown[0]!r} is not among "
                            f"{train_path}'s ({', '.join(class_names)})")
    if test is not None:
        if test.channels != pool.channels:
            raise DataError(f"{test_path}: {test.channels} channels; "
                            f"{train_path} has {pool.channels}")
    train, validation, test_split = split_pool(
        _split_of(pool, class_names),
        None if test is None else _split_of(test, class_names), data,
        what="series", description=description)
    lengths = pool.lengths
    return SeriesSplits(
        train=train, validation=validation, test=test_split,
        class_names=class_names,
        description=(f"{description}: {pool.channels} channel(s), lengths "
                     f"{int(lengths.min())} to {int(lengths.max())}"))


__all__ = ["EMBEDDED", "SeriesSet", "SeriesSplit", "SeriesSplits",
           "embedded_series", "load_series_splits", "pad_series",
           "read_long_csv", "read_npz", "read_series", "read_ts",
           "read_wide_csv"]
