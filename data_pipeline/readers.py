"""Readers of labelled texts on disk: class-per-folder directories (an
`aclImdb/` root included) and CSV files (plain Python and NumPy).

Each returns a `Labelled` pool (and a test set of its own, for aclImdb's
layout) with what reading skipped, repaired or ignored, for the user.
"""

import codecs
import csv
import dataclasses
import errno
import hashlib
import pathlib
import re
import sys
from collections.abc import Sequence

import numpy as np

from data_pipeline.config import DataError

ACLIMDB_IGNORED = ("unsup",)


@dataclasses.dataclass(frozen=True)
class Split:
    """Texts with integer labels indexing `TextSplits.class_names`."""

    texts: np.ndarray  # object array of str
    labels: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, idx: np.ndarray) -> "Split":
        return Split(texts=self.texts[idx], labels=self.labels[idx])

    def fingerprint(self) -> str:
        """A SHA-256 of the texts and labels in order: equal fingerprints
        mean the same split, so a number can be traced to its data."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels):
            data = str(text).encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
            digest.update(int(label).to_bytes(8, "little", signed=True))
        return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Labelled:
    """What a source reads: a pool to split, maybe a test set of its own,
    and what reading skipped or repaired (`notes` for the user, `stats`
    for `config.json`)."""

    pool: Split
    test: Split | None
    class_names: tuple[str, ...]
    description: str
    notes: tuple[str, ...] = ()
    stats: dict = dataclasses.field(default_factory=dict)


def make_split(texts: Sequence[str], labels: Sequence[int]) -> Split:
    """Texts and integer labels as a `Split`."""
    return Split(
        texts=np.asarray(list(texts), dtype=object),
        labels=np.asarray(labels, dtype=np.int32),
    )


class _Reading:
    """What reading a source skipped, repaired or ignored, for the user."""

    def __init__(self, decode_errors: str):
        self.decode_errors = decode_errors
        self.hidden: list[str] = []  # hidden files and folders ignored
        self.undecodable: list[str] = []  # files or rows not UTF-8

    def notes(self, unit: str) -> tuple[str, ...]:
        notes = []
        if self.hidden:
            shown = ", ".join(self.hidden[:3]) + (
                ", ..." if len(self.hidden) > 3 else "")
            notes.append(f"ignored {len(self.hidden)} hidden file(s) or "
                         f"folder(s): {shown}")
        if self.undecodable:
            done = ("replaced the undecodable bytes of" if
                    self.decode_errors == "replace" else "skipped")
            shown = ", ".join(self.undecodable[:3]) + (
                ", ..." if len(self.undecodable) > 3 else "")
            notes.append(f"data.decode_errors={self.decode_errors}: {done} "
                         f"{len(self.undecodable)} {unit}(s) that are not "
                         f"UTF-8: {shown}")
        return tuple(notes)

    def stats(self) -> dict:
        return {"decode_errors": self.decode_errors,
                "hidden_ignored": len(self.hidden),
                ("replaced" if self.decode_errors == "replace"
                 else "skipped"): len(self.undecodable)}


def _hidden(path: pathlib.Path) -> bool:
    return path.name.startswith(".")


_LINK_ERRORS = {
    errno.ELOOP: "a symbolic link loop",
    errno.ENOENT: "a dangling symbolic link (its target is missing)",
    errno.EISDIR: "a directory, not a text file",
}


def _read_text_file(path: pathlib.Path, reading: _Reading) -> str | None:
    """The file's text; None if `data.decode_errors=skip` skips it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        what = _LINK_ERRORS.get(e.errno, e.strerror)
        raise DataError(f"{path}: cannot be read: {what}; remove it or "
                        "point it at a text file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if reading.decode_errors == "strict":
            raise DataError(
                f"{path}: not UTF-8 text (byte {e.start}); convert it to "
                "UTF-8, remove it, or set data.decode_errors=replace or "
                "skip") from None
        reading.undecodable.append(path.name)
        if reading.decode_errors == "skip":
            return None
        text = data.decode("utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"{path}: empty text; remove the file or fill it")
    return text


def _read_class_folders(
    root: pathlib.Path, reading: _Reading, *, ignored: Sequence[str] = ()
) -> tuple[tuple[str, ...], list[str], list[int]]:
    """Reads `root/<class>/*.txt`: class names sorted, as Keras does.
    Hidden files and folders (`.DS_Store`, `.ipynb_checkpoints/`) are
    ignored and counted."""
    entries = sorted(root.iterdir())
    reading.hidden += [f"{root.name}/{p.name}" for p in entries
                       if _hidden(p)]
    folders = [p for p in entries if p.is_dir() and not _hidden(p)
               and p.name not in ignored]
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
        items = sorted(folder.iterdir())
        reading.hidden += [f"{root.name}/{folder.name}/{p.name}"
                           for p in items if _hidden(p)]
        files = [p for p in items
                 if p.name.endswith(".txt") and not _hidden(p)]
        if not files:
            raise DataError(
                f"{folder}: class folder has no .txt files; add texts or "
                "remove the folder"
            )
        kept = [t for t in (_read_text_file(f, reading) for f in files)
                if t is not None]
        if not kept:
            raise DataError(
                f"{folder}: no text left once the files that are not UTF-8 "
                "were skipped (data.decode_errors=skip)")
        texts.extend(kept)
        labels.extend([label] * len(kept))
    return tuple(p.name for p in folders), texts, labels


def read_directory(path: pathlib.Path, decode_errors: str) -> Labelled:
    if not path.exists():
        raise DataError(f"{path}: no such directory")
    if not path.is_dir():
        raise DataError(f"{path}: not a directory; use data.source=csv "
                        "for a CSV file")
    reading = _Reading(decode_errors)
    if (path / "train").is_dir() and (path / "test").is_dir():
        names, texts, labels = _read_class_folders(
            path / "train", reading, ignored=ACLIMDB_IGNORED
        )
        test_names, test_texts, test_labels = _read_class_folders(
            path / "test", reading, ignored=ACLIMDB_IGNORED
        )
        if test_names != names:
            raise DataError(
                f"{path}: train classes {list(names)} differ from test "
                f"classes {list(test_names)}"
            )
        return Labelled(
            pool=make_split(texts, labels),
            test=make_split(test_texts, test_labels),
            class_names=names,
            description=(
                f"{path} (train/test layout, {len(texts)} + "
                f"{len(test_texts)} texts)"
            ),
            notes=reading.notes("file"),
            stats=reading.stats(),
        )
    halves = [h for h in ("train", "test") if (path / h).is_dir()]
    if len(halves) == 1:  # an aclImdb layout with a half missing
        other = {"train": "test", "test": "train"}[halves[0]]
        raise DataError(
            f"{path}: has {halves[0]}/ but no {other}/; the train/test "
            f"layout needs both ({path}/{{train,test}}/<class>/*.txt), or "
            f"set data.path to {path / halves[0]} to split its classes")
    names, texts, labels = _read_class_folders(path, reading)
    return Labelled(
        pool=make_split(texts, labels),
        test=None,
        class_names=names,
        description=f"{path} ({len(texts)} texts, {len(names)} classes)",
        notes=reading.notes("file"),
        stats=reading.stats(),
    )


# What spreadsheets and pandas write for a missing value, and no label
# would be named.
MISSING_LABELS = frozenset({"", "nan", "<na>", "#n/a", "n/a"})
LONE_CR = re.compile(rb"(?<=\r)(?!\n)")  # where an old Mac line ends


class _CsvLines:
    """A CSV file's physical lines, decoded one at a time (a UTF-8 BOM
    dropped, line ends kept, as the csv module counts them): the file is
    never held whole. Lines with undecodable bytes get U+FFFD for them and
    are remembered in `bad`; with `strict`, the first one is an error."""

    def __init__(self, path: pathlib.Path, reading: _Reading):
        self.path = path
        self.reading = reading
        self.bad: set[int] = set()

    def __iter__(self):
        number, offset = 0, 0
        with open(self.path, "rb") as f:
            for raw in f:  # split at b"\n", which no UTF-8 character holds
                if number == 0 and raw.startswith(codecs.BOM_UTF8):
                    offset += len(codecs.BOM_UTF8)
                    raw = raw[len(codecs.BOM_UTF8):]
                for piece in LONE_CR.split(raw):
                    number += 1
                    yield self._decode(piece, number, offset)
                    offset += len(piece)

    def _decode(self, piece: bytes, number: int, offset: int) -> str:
        try:
            return piece.decode("utf-8")
        except UnicodeDecodeError as e:
            if self.reading.decode_errors == "strict":
                raise DataError(
                    f"{self.path}, line {number}: not UTF-8 text (byte "
                    f"{offset + e.start}); convert the file to UTF-8, or set "
                    "data.decode_errors=replace or skip") from None
            self.bad.add(number)
            return piece.decode("utf-8", "replace")


def _whole_number(label: str) -> int:
    """A label as a whole number (`1` and `1.0` alike, as a spreadsheet
    may write them), else ValueError."""
    try:
        return int(label)
    except ValueError:
        value = float(label)
    if not value.is_integer():
        raise ValueError(label)
    return int(value)


def read_csv(path: pathlib.Path, text_column: str, label_column: str,
              decode_errors: str) -> Labelled:
    if path.is_dir():
        raise DataError(f"{path}: a directory, not a CSV file; use "
                        "data.source=directory for class-per-folder texts")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    csv.field_size_limit(sys.maxsize)
    reading = _Reading(decode_errors)
    lines = _CsvLines(path, reading)
    reader = csv.reader(iter(lines))
    try:
        columns = next(reader)
    except StopIteration:
        raise DataError(f"{path}: empty file; expected a header line "
                        f"naming {text_column!r} and {label_column!r}"
                        ) from None
    except csv.Error as e:
        raise DataError(f"{path}, line 1: {e}") from None
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise DataError(f"{path}, line 1: the header names column "
                        f"{', '.join(map(repr, twice))} twice; give each "
                        "column its own name")
    missing = [c for c in (text_column, label_column) if c not in columns]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(map(repr, missing))}; "
            f"columns are {', '.join(map(repr, columns)) or 'none'} "
            "(set data.text_column / data.label_column)"
        )
    text_at, label_at = columns.index(text_column), columns.index(
        label_column)
    texts, raw = [], []
    first = reader.line_num + 1
    try:
        for row in reader:
            line, last = first, reader.line_num
            first = last + 1
            if not row:
                continue  # a blank line
            if row == columns:
                raise DataError(
                    f"{path}, line {line}: repeats the header (files "
                    "joined together?); remove the line")
            if lines.bad.intersection(range(line, last + 1)):
                reading.undecodable.append(f"line {line}")
                if decode_errors == "skip":
                    continue
            if len(row) > len(columns):
                raise DataError(
                    f"{path}, line {line}: {len(row)} fields where the "
                    f"header names {len(columns)}; quote a text that holds "
                    "a comma")
            if len(row) < len(columns) and last > line:
                raise DataError(
                    f"{path}, line {line}: a quoted field opened here runs "
                    f"to line {last}, leaving {len(row)} of the header's "
                    f"{len(columns)} fields (an unclosed quote?)")
            text = row[text_at] if text_at < len(row) else ""
            label = row[label_at] if label_at < len(row) else ""
            if not text.strip():
                raise DataError(f"{path}, line {line}: empty text in "
                                f"column {text_column!r}")
            if label.strip().lower() in MISSING_LABELS:
                raise DataError(
                    f"{path}, line {line}: missing label ({label!r}) in "
                    f"column {label_column!r}; every row needs a label")
            texts.append(text)
            raw.append(label.strip())
    except csv.Error as e:
        raise DataError(f"{path}, line {reader.line_num}: {e}") from None
    try:
        keys = [_whole_number(x) for x in raw]  # sorted as numbers
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
    return Labelled(
        pool=make_split(texts, labels),
        test=None,
        class_names=names,
        description=f"{path} ({len(texts)} rows, {len(names)} classes)",
        notes=reading.notes("row"),
        stats=reading.stats(),
    )
