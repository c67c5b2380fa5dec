"""One entry of the vectorized-data cache: its key, its files, and how
they are written (from the corpus, or cut from a larger entry) and opened
(memory-mapped, checked against `meta.json`).

An entry's directory holds `vocabulary.txt`, each split's `<split>.ids.npy`
(the smallest unsigned type that holds the vocabulary), `.labels.npy` and
`.lengths.npy`, the test split's raw texts (`test.texts.bin` and their
offsets), and `meta.json`, written last: an entry is whole once it is
there. `meta.json` holds the SHA-256 of every file but the ids and the
test texts (read whole at every open, they would cost seconds at a
million texts); those are checked by size, shape and type.
"""

import dataclasses
import hashlib
import importlib.metadata
import json
import pathlib
from collections.abc import Iterator

import numpy as np

from data_pipeline.config import NOT_SPLIT, DataConfig
from data_pipeline.pipeline import (DataInfo, VectorizedSplits, id_dtype,
                                    named_splits, vectorized_batches)
from data_pipeline.text import (adapt_vocabulary, load_vocabulary,
                                vectorizer_for, write_vocabulary)

FORMAT = 2  # bump when an entry's files change meaning
META = "meta.json"
VOCABULARY = "vocabulary.txt"
TEST_TEXTS = "test.texts.bin"  # UTF-8, one after another
TEST_OFFSETS = "test.offsets.npy"  # int64[texts + 1]: where each starts
# The splits' key: the source's files stand for `path`; the vectorizer's
# fields are the entry's own.
NOT_IN_KEY = ("path", *NOT_SPLIT)
VERSIONED = ("tensorflow", "keras")  # their tokenizing changes ids
CHUNK_ROWS = 65536  # rows copied at a time when deriving an entry


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
        for name in _checked_files(meta["examples"]):
            if _checksum(path / name) != meta["sha256"][name]:
                raise DamagedEntry(f"{name} has changed since it was "
                                   "written")
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


def _checksum(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked_files(examples) -> list[str]:
    """The files whose SHA-256 `meta.json` holds: all but the ids and
    the test texts (see the module's docstring)."""
    names = [VOCABULARY, *(f"{name}.{what}.npy" for name in examples
                           for what in ("labels", "lengths"))]
    return names + ([TEST_OFFSETS] if "test" in examples else [])


def _write_meta(directory: pathlib.Path, entry: EntryKey,
                vocabulary: list[str], examples: dict, info: DataInfo
                ) -> None:
    write_vocabulary(vocabulary, directory / VOCABULARY)
    meta = {"format": FORMAT, "key": entry.key, "splits": entry.splits,
            "max_tokens": entry.max_tokens,
            "sequence_length": entry.sequence_length,
            "vocabulary_size": len(vocabulary), "examples": examples,
            "sha256": {name: _checksum(directory / name)
                       for name in _checked_files(examples)},
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


def build_entry(splits, directory: pathlib.Path, entry: EntryKey) -> None:
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


def derive_entry(larger: VectorizedSplits, directory: pathlib.Path,
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


__all__ = ["DamagedEntry", "EntryKey", "build_entry", "cut_ids",
           "derive_entry", "open_entry"]
