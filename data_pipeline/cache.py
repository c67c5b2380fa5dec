"""The vectorized-data cache: each data setting is read, adapted and
vectorized once, then opened memory-mapped by every run that asks for it.

    cache = DataCache(default_root(config.data), report=print)
    vectorized = cache.open(config.data)  # built on first use

An entry is a directory named by its key, a hash of what produced it:
the source's files (path, size and modification time of each), every
`DataConfig` field that decides the splits or the ids, and the versions of
the libraries that tokenize (TensorFlow, Keras). It holds the vocabulary,
each split's ids in the smallest unsigned type that holds the vocabulary,
its labels and text lengths (NumPy `.npy` files, memory-mapped on open),
the test split's raw texts, and `meta.json` with the key and what a run
records about its data (class names, fingerprints of each split).

An entry is written in a directory beside it and renamed into place, so a
crash leaves no half entry and two writers never mix their files; a lock
makes a second builder of the same entry wait and open the first one's. An
entry whose files do not match its `meta.json` is rebuilt, with a line
saying so. A setting that differs from a cached one only in a smaller
`max_tokens` or `sequence_length` is derived from it without reading the
corpus: the vocabulary is ranked once and cut (a smaller one is a prefix),
and ids are truncated at the end (a shorter length is a slice).
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator

import numpy as np

from data_pipeline.cache_entry import (META, DamagedEntry, EntryKey,
                                       build_entry, cut_ids, derive_entry,
                                       open_entry)
from data_pipeline.config import DataConfig, DataError
from data_pipeline.pipeline import VectorizedSplits, id_dtype
from data_pipeline.sources import (TextSplits, download_aclimdb,
                                   embedded_csv, load_splits)


def default_root(data: DataConfig) -> pathlib.Path:
    """Where `train` and `compare` cache vectorized data:
    `<data.cache_dir>/data`, else `$XDG_CACHE_HOME/rnntune/data` (by
    default `~/.cache/rnntune/data`)."""
    if data.cache_dir:
        return pathlib.Path(data.cache_dir).expanduser() / "data"
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "rnntune" / "data"


def _file_identity(path: pathlib.Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _tree_identity(root: pathlib.Path) -> dict:
    """Every file under `root`: its path, size and modification time,
    hashed (a directory source of 100,000 files takes a second)."""
    root = root.resolve()
    if not root.is_dir():
        raise FileNotFoundError(root)
    digest = hashlib.sha256()
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = pathlib.Path(folder, name)
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0"
                          f"{stat.st_mtime_ns}\n".encode("utf-8",
                                                         "surrogatepass"))
            count += 1
    return {"root": str(root), "files": count, "digest": digest.hexdigest()}


def source_identity(data: DataConfig) -> dict:
    """What identifies the source's contents without reading them.

    Raises:
        OSError: the source's file or directory is missing.
    """
    if data.source in ("imdb", "rotten_tomatoes"):
        return {"file": _file_identity(embedded_csv())}
    if data.source == "csv":
        return {"file": _file_identity(pathlib.Path(data.path).expanduser())}
    if data.source == "directory":
        return _tree_identity(pathlib.Path(data.path).expanduser())
    return _tree_identity(download_aclimdb(data.url, data.cache_dir))

class DataCache:
    """Vectorized data under `root`, one entry per data setting.

    Args:
        root: the cache's directory (created when first written).
        report: receives one line when an entry is built, derived or
            rebuilt.
    """

    def __init__(self, root: str | os.PathLike,
                 report: Callable[[str], None] = print):
        self.root = pathlib.Path(root)
        self.report = report

    def open(self, data: DataConfig, *, splits: TextSplits | None = None
             ) -> VectorizedSplits:
        """The vectorized splits of `data`, from the cache (built there
        first if missing or damaged).

        Args:
            data: the data settings.
            splits: `load_splits(data)`, when the caller has read them
                already (else read here if the entry is built).

        Raises:
            DataError: the source cannot be read.
        """
        try:
            entry = EntryKey.of(data, source_identity(data))
        except OSError:
            load_splits(data)  # says what is missing, as a DataError
            raise
        path = self.root / entry.name
        found = self._open_checked(path, entry)
        if found is not None:
            return found
        try:
            return self._write(data, entry, path, splits)
        except OSError as e:  # a read-only or full file system
            self.report(f"data cache: cannot write {self.root} "
                        f"({e.strerror or e}); reading the data in this "
                        "process instead (set data.cache_dir elsewhere, or "
                        "--no-cache)")
            return VectorizedSplits.build(
                splits or load_splits(data), max_tokens=data.max_tokens,
                sequence_length=data.sequence_length)

    def _write(self, data: DataConfig, entry: EntryKey, path: pathlib.Path,
               splits: TextSplits | None) -> VectorizedSplits:
        """Builds the entry (or derives it from a larger one), under the
        entry's lock, and opens it."""
        with self._lock(entry):
            found = self._open_checked(path, entry)  # built meanwhile?
            if found is not None:
                return found
            # Under the lock, what a killed builder left is nobody's.
            for stale in self.root.glob(f".{entry.name}.*"):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
            larger = self._larger(entry)
            with self._staging(path) as staging:
                if larger is not None:
                    self.report(f"data cache: deriving {path.name} "
                                f"(max_tokens={entry.max_tokens}, "
                                f"sequence_length={entry.sequence_length})"
                                f" from {larger[0].name}, without reading "
                                "the corpus")
                    derive_entry(larger[1], staging, entry)
                else:
                    self.report(f"data cache: building {path}")
                    build_entry(splits or load_splits(data), staging, entry)
        return open_entry(path, entry)

    def _open_checked(self, path: pathlib.Path,
                      entry: EntryKey) -> VectorizedSplits | None:
        if not path.exists():
            return None
        try:
            return open_entry(path, entry)
        except DamagedEntry as e:
            self.report(f"data cache: {path} is damaged ({e}); rebuilding")
            _remove(path)
            return None

    def _larger(self, entry: EntryKey
                ) -> tuple[pathlib.Path, VectorizedSplits] | None:
        """The smallest intact entry of the same splits with at least
        `entry`'s vocabulary size and length, and its path (None: none)."""
        candidates = []
        for meta_path in self.root.glob(f"*/{META}"):
            if meta_path.parent.name.startswith("."):
                continue  # being written, or set aside
            try:
                meta = json.loads(meta_path.read_text())
                splits, tokens, length = (meta["splits"],
                                          meta["max_tokens"],
                                          meta["sequence_length"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if (splits == entry.splits and tokens >= entry.max_tokens
                    and length >= entry.sequence_length):
                candidates.append((tokens, length, meta_path.parent))
        for *_, path in sorted(candidates):
            try:
                return path, open_entry(path, None)
            except DamagedEntry:
                continue
        return None

    @contextlib.contextmanager
    def _lock(self, entry: EntryKey) -> Iterator[None]:
        """Held while an entry is built: a second builder waits, then
        opens the first one's entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{entry.name}.lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX)
            except OSError:  # no locks on this file system: build twice
                pass
            yield

    @contextlib.contextmanager
    def _staging(self, path: pathlib.Path) -> Iterator[pathlib.Path]:
        """A directory beside `path`, renamed to `path` once written (and
        removed if writing fails)."""
        staging = pathlib.Path(tempfile.mkdtemp(
            prefix=f".{path.name}.", dir=self.root))
        try:
            yield staging
            try:
                os.rename(staging, path)
            except OSError:
                if not path.is_dir():  # not another writer's entry
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _remove(path: pathlib.Path) -> None:
    """Moves a damaged entry aside, then deletes it (a reader that has it
    open keeps its pages)."""
    aside = path.with_name(f".{path.name}.damaged.{os.getpid()}")
    try:
        os.rename(path, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class ShippedData:
    """A study's vectorized training and validation splits carried in
    memory to trials that cannot open its data cache (through Ray's object
    store, where their arrays stay shared by the trials of a node). It
    serves every data setting its entry could be derived for.

    Attributes:
        split_key: `DataConfig.split_key` of the data it holds.
        vectorized: the splits (no test split: trials never see it).
    """

    split_key: tuple
    vectorized: VectorizedSplits

    @classmethod
    def of(cls, data: DataConfig, vectorized: VectorizedSplits
           ) -> "ShippedData":
        kept = [name for name in vectorized.ids if name != "test"]
        return cls(split_key=data.split_key, vectorized=dataclasses.replace(
            vectorized,
            ids={name: np.asarray(vectorized.ids[name]) for name in kept},
            labels={name: np.asarray(vectorized.labels[name])
                    for name in kept},
            lengths={name: np.asarray(vectorized.lengths[name])
                     for name in kept},
            test_texts=None))

    @property
    def nbytes(self) -> int:
        held = self.vectorized
        return sum(a.nbytes for arrays in (held.ids, held.labels,
                                           held.lengths)
                   for a in arrays.values())

    def serves(self, data: DataConfig) -> bool:
        held = self.vectorized
        return (data.split_key == self.split_key
                and data.max_tokens <= held.max_tokens
                and data.sequence_length <= held.sequence_length)

    def open(self, data: DataConfig) -> VectorizedSplits:
        """The splits at `data`'s vocabulary size and length (derived in
        memory as the cache derives an entry), for a `data` it serves."""
        held = self.vectorized
        if (data.max_tokens, data.sequence_length) == (
                held.max_tokens, held.sequence_length):
            return held
        vocabulary = held.vocabulary[:data.max_tokens]
        ids = {name: np.concatenate([
                   *cut_ids(source, vocabulary_size=len(vocabulary),
                            sequence_length=data.sequence_length),
                   np.empty((0, data.sequence_length),
                            id_dtype(len(vocabulary)))])
               for name, source in held.ids.items()}
        return dataclasses.replace(
            held, vocabulary=vocabulary, max_tokens=data.max_tokens, ids=ids,
            lengths={name: np.count_nonzero(a, axis=1).astype(np.int32)
                     for name, a in ids.items()})


def open_vectorized(data: DataConfig, *, root: pathlib.Path | None = None,
                    report: Callable[[str], None] = print
                    ) -> VectorizedSplits:
    """`data` vectorized: from the cache at `root` (default
    `default_root(data)`) unless `data.cache` is off, else read and
    vectorized in memory. Numeric series are prepared in memory
    (`SeriesArrays`, or `ForecastArrays` of forecasting windows: small,
    never cached).

    Raises:
        DataError: the source cannot be read.
    """
    if data.task == "forecast":
        from data_pipeline.forecast_arrays import ForecastArrays

        return ForecastArrays.build(data)
    if data.kind == "series":
        from data_pipeline.series_arrays import SeriesArrays

        return SeriesArrays.build(load_splits(data), data)
    if not data.cache:
        return VectorizedSplits.build(load_splits(data),
                                      max_tokens=data.max_tokens,
                                      sequence_length=data.sequence_length)
    return DataCache(root or default_root(data), report=report).open(data)


__all__ = ["DataCache", "DataError", "ShippedData", "default_root",
           "open_vectorized"]
