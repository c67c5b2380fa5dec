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
import importlib.metadata
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator

import numpy as np

from data_pipeline.config import NOT_SPLIT, DataConfig, DataError
from data_pipeline.pipeline import (DataInfo, VectorizedSplits, id_dtype,
                                    named_splits, vectorized_batches)
from data_pipeline.sources import (TextSplits, download_aclimdb,
                                   embedded_csv, load_splits)
from data_pipeline.text import (adapt_vocabulary, load_vocabulary,
                                vectorizer_for, write_vocabulary)

FORMAT = 1  # bump when an entry's files change meaning
META = "meta.json"
VOCABULARY = "vocabulary.txt"
TEST_TEXTS = "test.texts.bin"  # UTF-8, one after another
TEST_OFFSETS = "test.offsets.npy"  # int64[texts + 1]: where each starts
# The splits' key: the source's files stand for `path`; the vectorizer's
# fields are the entry's own.
NOT_IN_KEY = ("path", *NOT_SPLIT)
VERSIONED = ("tensorflow", "keras")  # their tokenizing changes ids
CHUNK_ROWS = 65536  # rows copied at a time when deriving an entry


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


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()
                          ).hexdigest()


def _versions() -> dict:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


@dataclasses.dataclass(frozen=True)
class EntryKey:
    """An entry's key: `splits` identifies the texts of every split (the
    source and the split settings), `key` adds the vectorizer's."""

    splits: str
    max_tokens: int
    sequence_length: int

    @property
    def key(self) -> str:
        return _hash([self.splits, self.max_tokens, self.sequence_length])

    @property
    def name(self) -> str:  # the entry's directory
        return self.key[:24]

    @classmethod
    def of(cls, data: DataConfig, identity: dict) -> "EntryKey":
        settings = {f.name: getattr(data, f.name)
                    for f in dataclasses.fields(data)
                    if f.name not in NOT_IN_KEY}
        return cls(splits=_hash({"format": FORMAT, "source": identity,
                                 "settings": settings,
                                 "versions": _versions()}),
                   max_tokens=data.max_tokens,
                   sequence_length=data.sequence_length)


class DamagedEntry(Exception):
    """An entry whose files do not match its `meta.json`."""


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
                    _derive(larger[1], staging, entry)
                else:
                    self.report(f"data cache: building {path}")
                    _build(splits or load_splits(data), staging, entry)
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


def open_entry(path: pathlib.Path, entry: EntryKey | None
               ) -> VectorizedSplits:
    """The entry at `path`, memory-mapped, checked against `entry`'s key
    (None: against itself only).

    Raises:
        DamagedEntry: a file is missing, unreadable or of another shape.
    """
    try:
        meta = json.loads((path / META).read_text())
        if meta.get("format") != FORMAT:
            raise DamagedEntry(f"format {meta.get('format')!r}, "
                               f"not {FORMAT}")
        if entry is not None and meta.get("key") != entry.key:
            raise DamagedEntry("its key does not match its name")
        vocabulary = load_vocabulary(path / VOCABULARY)
        if len(vocabulary) != meta["vocabulary_size"]:
            raise DamagedEntry(f"{VOCABULARY} holds {len(vocabulary)} "
                               f"tokens, not {meta['vocabulary_size']}")
        dtype = id_dtype(len(vocabulary))
        ids, labels, lengths = {}, {}, {}
        for name, examples in meta["examples"].items():
            ids[name] = _mapped(path / f"{name}.ids.npy",
                                (examples, meta["sequence_length"]), dtype)
            labels[name] = _mapped(path / f"{name}.labels.npy",
                                   (examples,), np.int32)
            lengths[name] = _mapped(path / f"{name}.lengths.npy",
                                    (examples,), np.int32)
        test_texts = None
        if "test" in ids:
            test_texts = PackedTexts(
                path / TEST_TEXTS,
                _mapped(path / TEST_OFFSETS, (len(ids["test"]) + 1,),
                        np.int64))
        info = meta["info"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DamagedEntry(str(e) or type(e).__name__) from None
    return VectorizedSplits(
        vocabulary=tuple(vocabulary), max_tokens=meta["max_tokens"],
        ids=ids, labels=labels, lengths=lengths,
        info=DataInfo(class_names=tuple(info["class_names"]),
                      description=info["description"],
                      notes=tuple(info["notes"]), stats=info["stats"],
                      fingerprints=info["fingerprints"]),
        test_texts=test_texts)


def _mapped(path: pathlib.Path, shape: tuple, dtype) -> np.ndarray:
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise DamagedEntry(f"{path.name} holds {array.dtype}{list(array.shape)}"
                           f", not {np.dtype(dtype)}{list(shape)}")
    return array


class PackedTexts:
    """Texts stored one after another in a UTF-8 file, by index."""

    def __init__(self, path: pathlib.Path, offsets: np.ndarray):
        self.path = path
        self.offsets = offsets
        if path.stat().st_size != int(offsets[-1]):
            raise DamagedEntry(f"{path.name} holds {path.stat().st_size} "
                               f"bytes, not {int(offsets[-1])}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __iter__(self) -> Iterator[str]:
        data = self.path.read_bytes()
        for start, end in zip(self.offsets[:-1], self.offsets[1:]):
            yield data[start:end].decode("utf-8", "surrogatepass")

    @staticmethod
    def write(texts, directory: pathlib.Path) -> None:
        offsets = [0]
        with open(directory / TEST_TEXTS, "wb") as f:
            for text in texts:
                data = str(text).encode("utf-8", "surrogatepass")
                f.write(data)
                offsets.append(offsets[-1] + len(data))
        np.save(directory / TEST_OFFSETS, np.asarray(offsets, np.int64))


def _write_meta(directory: pathlib.Path, entry: EntryKey,
                vocabulary: list[str], examples: dict, info: DataInfo
                ) -> None:
    write_vocabulary(vocabulary, directory / VOCABULARY)
    meta = {"format": FORMAT, "key": entry.key, "splits": entry.splits,
            "max_tokens": entry.max_tokens,
            "sequence_length": entry.sequence_length,
            "vocabulary_size": len(vocabulary), "examples": examples,
            "info": dataclasses.asdict(info), "versions": _versions()}
    # Last: an entry is whole once its meta.json is there.
    (directory / META).write_text(json.dumps(meta, indent=1) + "\n")


def _write_split(directory: pathlib.Path, name: str, batches, *,
                 shape: tuple[int, int], dtype, labels) -> None:
    """Writes a split's ids from `batches` of rows (in order, never all
    in memory), their lengths and the split's labels."""
    ids = np.lib.format.open_memmap(directory / f"{name}.ids.npy",
                                    mode="w+", dtype=dtype, shape=shape)
    lengths = np.empty(shape[0], np.int32)
    row = 0
    for batch in batches:
        ids[row:row + len(batch)] = batch
        lengths[row:row + len(batch)] = np.count_nonzero(batch, axis=1)
        row += len(batch)
    ids.flush()
    del ids
    np.save(directory / f"{name}.labels.npy", np.asarray(labels, np.int32))
    np.save(directory / f"{name}.lengths.npy", lengths)


def _build(splits, directory: pathlib.Path, entry: EntryKey) -> None:
    """Adapts, vectorizes and writes every split of `splits`, a batch of
    ids at a time."""
    vocabulary = adapt_vocabulary(splits.train.texts,
                                  max_tokens=entry.max_tokens)
    vectorizer = vectorizer_for(vocabulary, max_tokens=entry.max_tokens,
                                sequence_length=entry.sequence_length)
    dtype = id_dtype(len(vocabulary))
    named = named_splits(splits)
    for name, split in named.items():
        _write_split(directory, name,
                     vectorized_batches(split.texts, vectorizer, dtype=dtype),
                     shape=(len(split), entry.sequence_length), dtype=dtype,
                     labels=split.labels)
    if splits.test is not None:
        PackedTexts.write(splits.test.texts, directory)
    _write_meta(directory, entry, vocabulary,
                {name: len(split) for name, split in named.items()},
                DataInfo.of(splits))


def cut_ids(source: np.ndarray, *, vocabulary_size: int,
            sequence_length: int) -> Iterator[np.ndarray]:
    """`source`'s ids as a smaller vocabulary and length give them, a
    chunk of rows at a time: each row's first `sequence_length` ids, those
    past the vocabulary's first `vocabulary_size` tokens `[UNK]` (1)."""
    for start in range(0, len(source), CHUNK_ROWS):
        chunk = np.array(source[start:start + CHUNK_ROWS, :sequence_length])
        chunk[chunk >= vocabulary_size] = 1
        yield chunk.astype(id_dtype(vocabulary_size), copy=False)


def _derive(larger: VectorizedSplits, directory: pathlib.Path,
            entry: EntryKey) -> None:
    """Writes `entry` from an entry with a larger vocabulary or length
    (`cut_ids`)."""
    vocabulary = list(larger.vocabulary[:entry.max_tokens])
    for name, source in larger.ids.items():
        _write_split(directory, name,
                     cut_ids(source, vocabulary_size=len(vocabulary),
                             sequence_length=entry.sequence_length),
                     shape=(len(source), entry.sequence_length),
                     dtype=id_dtype(len(vocabulary)),
                     labels=larger.labels[name])
    if larger.test_texts is not None:
        PackedTexts.write(larger.test_texts, directory)
    _write_meta(directory, entry, vocabulary,
                {name: len(a) for name, a in larger.ids.items()},
                larger.info)


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
    (`SeriesArrays`: small, never cached).

    Raises:
        DataError: the source cannot be read.
    """
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
