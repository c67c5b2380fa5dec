"""Word vectors from a file, for the words of a vocabulary (no TensorFlow).

    found = read_vectors(pathlib.Path("glove.6B.100d.txt"), vocabulary)
    found.rows, found.vectors        # vocabulary rows, float32 [n, dim]
    found.describe(len(vocabulary))  # "vectors for 17,412 of 20,000 words"

The formats users have on disk, gzip-compressed or not (told by the
file's first bytes, not its name):

- text, one word per line followed by its numbers, separated by spaces:
  GloVe (no header), word2vec's text format and fastText's `.vec` (a first
  line `COUNT DIMENSIONS`);
- word2vec's binary format (`.bin`): a `COUNT DIMENSIONS` line, then per
  word the word, a space and DIMENSIONS little-endian float32 values.

The file is streamed once: only the vocabulary's words are kept, so a
multi-gigabyte file costs the vectors of at most the vocabulary. A word
is matched as written; a vocabulary word the file has only in other case
(`Paris` for `paris`: the vocabulary is lower-cased) takes the first such
vector. A malformed line is a one-line `DataError` naming the file and
line.
"""

import contextlib
import dataclasses
import gzip
import hashlib
import pathlib
import zlib
from collections.abc import Sequence

import numpy as np

from data_pipeline.config import DataError

GZIP_MAGIC = b"\x1f\x8b"
HASH_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class FoundVectors:
    """The vectors a file holds for a vocabulary.

    Attributes:
        rows: the vocabulary index of each vector found, int64.
        vectors: float32 [len(rows), dimensions].
        dimensions: the file's vector width.
        record: what a run records of the file: its name, size, SHA-256,
            dimensions and the words covered.
    """

    rows: np.ndarray
    vectors: np.ndarray
    dimensions: int
    record: dict

    def describe(self, vocabulary_size: int) -> str:
        """How many of the vocabulary's words have a vector (its first
        two entries, padding and the unknown token, are not words)."""
        words = max(vocabulary_size - 2, 0)
        return (f"vectors for {len(self.rows):,} of {words:,} words "
                f"({len(self.rows) / max(words, 1):.1%}) "
                f"from {self.record['file']}")


def _open(path: pathlib.Path):
    """The file as a binary stream, gunzipped if it is gzip."""
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == GZIP_MAGIC
        return gzip.open(path, "rb") if compressed else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such vectors file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror})") from None


@contextlib.contextmanager
def _damaged_gzip_said(path: pathlib.Path):
    """A cut or corrupt `.gz` as a one-line `DataError`."""
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: a damaged gzip file ({e}); expected a "
                        "whole .gz, or the vectors uncompressed") from None


def _is_binary(path: pathlib.Path) -> bool:
    """Whether the file is word2vec's binary format: a `COUNT DIM` header
    followed by bytes that are not text."""
    with _open(path) as f:
        header = f.readline(200).split()
        sample = f.read(4096)
    if len(header) != 2 or not all(h.isdigit() for h in header):
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start < len(sample) - 4  # not just a cut character
    return False


def _fingerprint(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Collector:
    """Keeps the vectors of the vocabulary's words, exact matches first."""

    def __init__(self, vocabulary: Sequence[str]):
        self.index = {word: i for i, word in enumerate(vocabulary)
                      if i > 1}  # not the padding, nor the unknown token
        self.exact: dict[int, np.ndarray] = {}
        self.folded: dict[int, np.ndarray] = {}

    def wants(self, word: str) -> int | None:
        row = self.index.get(word)
        if row is not None and row not in self.exact:
            return row
        row = self.index.get(word.lower())
        if row is not None and row not in self.exact \
                and row not in self.folded:
            return -row - 1  # a case-folded match
        return None

    def add(self, row: int, vector: np.ndarray) -> None:
        if row >= 0:
            self.exact[row] = vector
        else:
            self.folded[-row - 1] = vector

    def found(self, dimensions: int) -> tuple[np.ndarray, np.ndarray]:
        merged = {**self.folded, **self.exact}
        rows = np.array(sorted(merged), np.int64)
        vectors = (np.stack([merged[r] for r in rows]) if len(rows)
                   else np.zeros((0, dimensions), np.float32))
        return rows, vectors.astype(np.float32)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _finite(vector: np.ndarray, path: pathlib.Path, where: str,
            word: str) -> np.ndarray:
    """`vector`, refused if it holds a NaN or an infinity (a model
    started from one learns nothing: every weight becomes NaN)."""
    if not np.isfinite(vector).all():
        raise DataError(f"{path}{where}: the vector of {word!r} holds "
                        "NaN or infinite values; only finite numbers are "
                        "accepted")
    return vector


def _read_text(path: pathlib.Path, collector: _Collector) -> int:
    dimensions = None
    with _open(path) as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{number}: not UTF-8 text") from None
            parts = line.rstrip("\r\n").rstrip(" ").split(" ")
            if number == 1 and len(parts) == 2 and all(
                    p.isdigit() for p in parts):
                dimensions = int(parts[1])  # word2vec / fastText header
                continue
            if len(parts) < 2 or not parts[0]:
                if not line.strip():
                    continue
                raise DataError(f"{path}:{number}: expected a word and its "
                                "numbers separated by spaces")
            if dimensions is None:
                dimensions = len(parts) - 1
            if len(parts) - 1 != dimensions:
                raise DataError(f"{path}:{number}: {len(parts) - 1} numbers;"
                                f" the file's vectors have {dimensions}")
            row = collector.wants(parts[0])
            if row is None:
                continue
            try:
                vector = np.array(parts[1:], np.float32)
            except ValueError:
                bad = next(p for p in parts[1:] if not _is_number(p))
                raise DataError(f"{path}:{number}: {bad!r} in the vector of "
                                f"{parts[0]!r} is not a number") from None
            collector.add(row, _finite(vector, path, f":{number}",
                                       parts[0]))
    if dimensions is None:
        raise DataError(f"{path}: holds no vectors")
    return dimensions


def _read_binary(path: pathlib.Path, collector: _Collector) -> int:
    with _open(path) as f:
        count, dimensions = (int(v) for v in f.readline().split())
        width = 4 * dimensions
        for number in range(1, count + 1):
            word = bytearray()
            while (byte := f.read(1)) != b" ":
                if not byte:
                    raise DataError(f"{path}: ends at word {number} of "
                                    f"{count} (a cut file?)")
                if byte != b"\n":  # some writers end each vector with one
                    word += byte
            data = f.read(width)
            if len(data) != width:
                raise DataError(f"{path}: ends inside word {number}'s "
                                f"vector (a cut file?)")
            word = word.decode("utf-8", errors="replace")
            row = collector.wants(word)
            if row is not None:
                collector.add(row, _finite(np.frombuffer(data, "<f4").copy(),
                                           path, f" (word {number})", word))
    return dimensions


def _check_dimensions(path: pathlib.Path, width: int,
                      dimensions: int) -> None:
    if width != dimensions:
        raise DataError(f"{path}: vectors of {width} dimensions; "
                        f"model.embedding_dim is {dimensions} (set "
                        f"model.embedding_dim={width})")


def check_width(path: pathlib.Path, dimensions: int) -> None:
    """Refuses a vectors file whose width is not `dimensions`, from its
    first line (a study's check before it writes: no vocabulary yet).

    Raises:
        DataError: a missing, empty or damaged file, or another width.
    """
    path = pathlib.Path(path).expanduser()
    with _damaged_gzip_said(path), _open(path) as f:
        first = f.readline(1 << 20).decode("utf-8", errors="replace")
    parts = first.split()
    if not parts:
        raise DataError(f"{path}: holds no vectors")
    header = len(parts) == 2 and all(p.isdigit() for p in parts)
    _check_dimensions(path, int(parts[1]) if header else len(parts) - 1,
                      dimensions)


def read_vectors(path: pathlib.Path, vocabulary: Sequence[str], *,
                 dimensions: int | None = None) -> FoundVectors:
    """The vectors `path` holds for `vocabulary`'s words (its first two
    entries, padding and the unknown token, never take one).

    Args:
        path: a vectors file in a format of this module's docstring.
        vocabulary: the words, in index order.
        dimensions: the width the vectors must have (the model's
            embedding); None takes the file's.

    Raises:
        DataError: a missing or malformed file, or vectors of another
            width than `dimensions`.
    """
    path = pathlib.Path(path).expanduser()
    collector = _Collector(vocabulary)
    with _damaged_gzip_said(path):
        read = _read_binary if _is_binary(path) else _read_text
        width = read(path, collector)
    if dimensions is not None:
        _check_dimensions(path, width, dimensions)
    rows, vectors = collector.found(width)
    record = {"file": path.name, "bytes": path.stat().st_size,
              "sha256": _fingerprint(path), "dimensions": width,
              "words_covered": len(rows), "vocabulary": len(vocabulary)}
    return FoundVectors(rows=rows, vectors=vectors, dimensions=width,
                        record=record)


__all__ = ["FoundVectors", "check_width", "read_vectors"]
