"""Numeric series files as users bring them (no TensorFlow): each series
is a float32 array of shape (time, channels), ragged lengths kept as they
are, with a class name (classification) or a number (regression) each.

The formats, each read with a one-line `DataError` naming the file and the
line (or key) that is wrong:

- UCR/UEA `.ts`: the archive's header (`@classLabel`, `@targetLabel`,
  `@dimensions`, ...), then one series per line, channels separated by `:`,
  the label or target last. Read by this module rather than by aeon's or
  sktime's `load_from_ts_file`: those name neither the file nor the line of
  a malformed value, accept a class the header does not declare, and cost
  their package's import (numba, scikit-learn, pandas).
- NumPy `.npz`: `X` shaped (series, time, channels), or (series, time) for
  one channel; `channels_first` reads (series, channels, time); `y` the
  labels or targets; an optional `lengths` marks each series' real steps
  of a padded `X`.
- Wide CSV: one univariate series per row, a label column and the values
  in the other columns; a shorter series leaves its last cells empty.
- Long CSV: one row per step, `id` and `time` columns, one or more value
  columns (the channels) and a label column constant within each id.
"""

import csv
import dataclasses
import math
import pathlib
import zipfile
from collections.abc import Iterable, Sequence

import numpy as np

from data_pipeline.config import DataError


@dataclasses.dataclass(frozen=True)
class SeriesSet:
    """Series read from one file.

    Attributes:
        series: one float32 array (time, channels) per series, at its own
            length.
        labels: the class name of each series (classification), or None.
        targets: float64, the number of each series (regression), or None.
        class_names: the classes a `.ts` header declares, in its order
            (else those found, sorted); () for regression.
        description: where they came from, in words.
    """

    series: list[np.ndarray]
    labels: np.ndarray | None
    targets: np.ndarray | None
    class_names: tuple[str, ...] = ()
    description: str = ""

    def __len__(self) -> int:
        return len(self.series)

    @property
    def channels(self) -> int:
        return self.series[0].shape[1]

    @property
    def lengths(self) -> np.ndarray:
        return series_lengths(self.series)

    @property
    def task(self) -> str:
        if self.labels is not None:
            return "classification"
        return "regression" if self.targets is not None else "unlabelled"

    def padded(self, length: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """`pad_series` of these series (default: to the longest)."""
        return pad_series(self.series, length)


def series_lengths(series: Sequence[np.ndarray]) -> np.ndarray:
    """Each series' steps, int32."""
    return np.array([len(s) for s in series], np.int32)


def pad_series(series: Sequence[np.ndarray], length: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(values float32 [series, length, channels], lengths int32): each
    series right-padded with zeros to `length` (default: the longest), or
    cut to its first `length` steps; the lengths say which steps are real,
    so a zero in the data stays a value."""
    lengths = series_lengths(series)
    length = int(lengths.max()) if length is None else length
    values = np.zeros((len(series), length, series[0].shape[1]), np.float32)
    for row, one in enumerate(series):
        values[row, :min(len(one), length)] = one[:length]
    return values, np.minimum(lengths, length).astype(np.int32)


def _checked(path: pathlib.Path, series: list[np.ndarray], labels,
             targets, class_names, description) -> SeriesSet:
    if not series:
        raise DataError(f"{path}: holds no series")
    channels = {s.shape[1] for s in series}
    if len(channels) > 1:
        raise DataError(f"{path}: series with {sorted(channels)} channels; "
                        "expected the same number in every series")
    empty = [i for i, s in enumerate(series) if len(s) == 0]
    if empty:
        raise DataError(f"{path}: series {empty[0] + 1} has no values")
    for i, s in enumerate(series):
        if not np.isfinite(s).all():
            raise DataError(f"{path}: series {i + 1} holds a missing or "
                            "infinite value; expected finite numbers "
                            "(fill or drop it first)")
    if labels is not None:
        labels = np.asarray(labels, dtype=object)
        if not class_names:
            class_names = tuple(sorted(set(labels)))
        if len(class_names) < 2:
            raise DataError(f"{path}: one class ({class_names[0]!r}); "
                            "classification needs two or more")
    if targets is not None:
        targets = np.asarray(targets, np.float64)
        if not np.isfinite(targets).all():
            raise DataError(f"{path}: a target is missing or infinite")
    return SeriesSet(series=series, labels=labels, targets=targets,
                     class_names=tuple(class_names),
                     description=description or str(path))


def _number(text: str, path, where: str) -> float:
    if text.strip() == "?":
        raise DataError(f"{path}:{where}: a missing value ('?'); expected "
                        "a number (fill or drop missing values first)")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}:{where}: {text.strip()[:40]!r} is not a "
                        "number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}:{where}: {text.strip()!r}: expected a "
                        "finite number")
    return value


def read_ts(path: pathlib.Path, *, labelled: bool = True) -> SeriesSet:
    """A UCR/UEA `.ts` file (see the module's docstring); without
    `labelled`, its header may declare no label (series to predict).

    Raises:
        DataError: unreadable, a malformed header or line (named), a class
            the header does not declare, or no series.
    """
    header: dict[str, str] = {}
    series, labels, targets = [], [], []
    in_data = False
    for number, line in _lines(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{path}:{number}: expected a header "
                                "line (@key value) or @data before the "
                                "series")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                classes, target = _ts_header(path, header, labelled)
            else:
                header[key] = value.strip()
            continue
        fields = line.split(":")
        if classes is None and target is None:
            values = fields
        else:
            values, last = fields[:-1], fields[-1].strip()
            if classes is not None:
                if last not in classes:
                    raise DataError(
                        f"{path}:{number}: class {last!r} is not among "
                        f"the header's @classLabel "
                        f"({' '.join(classes)})")
                labels.append(last)
            else:
                targets.append(_number(last, path, str(number)))
        if not values:
            raise DataError(f"{path}:{number}: no values before the "
                            "label")
        dims = header.get("dimensions")
        if dims is not None and dims.isdigit() and len(values) != int(
                dims):
            raise DataError(f"{path}:{number}: {len(values)} channels; "
                            f"the header says @dimensions {dims}")
        channels = []
        for channel in values:
            if "(" in channel:
                raise DataError(f"{path}:{number}: time stamps are not "
                                "supported; expected plain values")
            channels.append([_number(v, path, str(number))
                             for v in channel.split(",")])
        lengths = {len(c) for c in channels}
        if len(lengths) > 1:
            raise DataError(f"{path}:{number}: channels of different "
                            f"lengths ({sorted(lengths)}); expected one "
                            "length per series")
        series.append(np.asarray(channels, np.float32).T.copy())
    if not in_data:
        raise DataError(f"{path}: no @data line; expected a UCR/UEA .ts "
                        "file")
    return _checked(path, series, labels if classes is not None else None,
                    targets if target is not None else None,
                    classes or (), header.get("problemname", ""))


def _lines(path: pathlib.Path):
    """`(number, line)` of a UTF-8 text file, decoded line by line (so a
    bad byte's line is named).

    Raises:
        DataError: unreadable, or not UTF-8.
    """
    try:
        handle = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: {e.strerror or e}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1
                                         else "utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{number}: not UTF-8 text"
                                ) from None


def _ts_header(path, header: dict[str, str], labelled: bool):
    """(class names or None, True for a regression target or None)."""
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(f"{path}: @timeStamps true is not supported; "
                        "expected plain values")
    label = header.get("classlabel", "false").split()
    target = header.get("targetlabel", "false").split()
    if label and label[0].lower() == "true":
        if len(label) < 3:
            raise DataError(f"{path}: @classLabel true names "
                            f"{len(label) - 1} class(es); expected two or "
                            "more")
        return tuple(label[1:]), None
    if target and target[0].lower() == "true":
        return None, True
    if not labelled:
        return None, None
    raise DataError(f"{path}: neither @classLabel true nor @targetLabel "
                    "true; expected one of them (a label or target per "
                    "series)")


def read_npz(path: pathlib.Path, *, task: str,
             channels_first: bool = False) -> SeriesSet:
    """A NumPy `.npz` with `X`, `y` and optionally `lengths`.

    Raises:
        DataError: unreadable, a key missing, or shapes that disagree.
    """
    if path.is_file() and not zipfile.is_zipfile(path):
        # np.load would take it for a pickle and say so.
        raise DataError(f"{path}: not an .npz archive (what numpy.savez "
                        "writes: X, y and optionally lengths)")
    try:
        with np.load(path, allow_pickle=False) as found:
            arrays = {k: found[k] for k in found.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz ({e})") from None
    for key in ("X", "y") if task != "unlabelled" else ("X",):
        if key not in arrays:
            raise DataError(f"{path}: no {key!r} array; found "
                            f"{', '.join(arrays) or 'none'} (expected X "
                            "and y, optionally lengths)")
    x = arrays["X"]
    y = arrays.get("y", np.zeros(len(x)))
    if x.ndim == 2:
        x = x[:, None, :] if channels_first else x[:, :, None]
    if x.ndim != 3:
        raise DataError(f"{path}: X has shape {list(x.shape)}; expected "
                        "(series, time, channels) or (series, time)")
    if channels_first:
        x = x.transpose(0, 2, 1)
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: X holds {x.dtype}; expected numbers")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y has shape {list(y.shape)}; expected "
                        f"({len(x)},), one per series of X")
    lengths = arrays.get("lengths")
    if lengths is None:
        lengths = np.full(len(x), x.shape[1])
    elif (lengths.shape != (len(x),) or lengths.min() < 1
          or lengths.max() > x.shape[1]):
        raise DataError(f"{path}: lengths must hold one length from 1 to "
                        f"{x.shape[1]} per series")
    series = [x[i, :int(n)].astype(np.float32) for i, n in enumerate(lengths)]
    return _labelled(path, series, [str(v) for v in y] if task
                     == "classification" else y, task=task,
                     description=str(path))


def _labelled(path, series, values, *, task: str, description: str
              ) -> SeriesSet:
    """A `SeriesSet` with `values` as class names or as targets (or
    neither, `unlabelled`)."""
    if task == "unlabelled":
        return _checked(path, series, None, None, (), description)
    if task == "classification":
        return _checked(path, series, list(values), None, (), description)
    bad = [v for v in values if not _is_number(v)]
    if bad:
        raise DataError(f"{path}: a regression target is not a number "
                        f"({str(bad[0])!r}); expected numbers for "
                        "data.task=regression")
    targets = [float(v) for v in values]
    return _checked(path, series, None, targets, (), description)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _csv_rows(path: pathlib.Path) -> tuple[list[str], Iterable]:
    """The header and `(line, row)` of each later row of a CSV file."""
    lines = _lines(path)
    reader = csv.reader(line for _, line in lines)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise DataError(f"{path}:1: {e}") from None
    if not header:
        raise DataError(f"{path}: empty; expected a header row")
    return [h.strip() for h in header], _numbered(path, reader)


def _numbered(path, reader):
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: {e}") from None


def _filled(path, header: list[str], rows):
    """`(line, row)` of each row that is not blank, checked to have the
    header's number of cells."""
    for number, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{number}: {len(row)} cells; the header "
                            f"has {len(header)}")
        yield number, row


def _column(path, header: list[str], name: str, key: str) -> int:
    if name not in header:
        raise DataError(f"{path}: no column {name!r} ({key}); the header "
                        f"has {', '.join(header)}")
    return header.index(name)


def read_wide_csv(path: pathlib.Path, *, task: str,
                  label_column: str = "label") -> SeriesSet:
    """One univariate series per row: `label_column`, then the values.

    Raises:
        DataError: no such column, a non-numeric value (file and line),
            or no series.
    """
    header, rows = _csv_rows(path)
    label_at = (_column(path, header, label_column, "data.label_column")
                if task != "unlabelled" or label_column in header else None)
    series, values = [], []
    for number, row in _filled(path, header, rows):
        cells = [c for i, c in enumerate(row) if i != label_at]
        while cells and not cells[-1].strip():
            cells.pop()  # a shorter series
        if any(not c.strip() for c in cells):
            raise DataError(f"{path}:{number}: an empty cell inside the "
                            "series; only its end may be empty")
        series.append(np.asarray([[_number(c, path, str(number))]
                                  for c in cells], np.float32))
        values.append(row[label_at].strip() if label_at is not None else "")
    return _labelled(path, series, values, task=task, description=str(path))


def read_long_csv(path: pathlib.Path, *, task: str,
                  value_columns: Sequence[str], id_column: str = "id",
                  time_column: str = "time",
                  label_column: str = "label") -> SeriesSet:
    """One row per step of each series (see the module's docstring); the
    steps of a series are ordered by `time_column` (numbers, or text
    that sorts, such as ISO dates).

    Raises:
        DataError: a column missing, a non-numeric value, a repeated time
            within a series or a label that changes within one (file and
            line).
    """
    header, rows = _csv_rows(path)
    id_at = _column(path, header, id_column, "data.id_column")
    time_at = _column(path, header, time_column, "data.time_column")
    label_at = (_column(path, header, label_column, "data.label_column")
                if task != "unlabelled" or label_column in header else None)
    if not value_columns:
        raise DataError(f"{path}: no value columns named "
                        "(data.value_columns)")
    value_at = [_column(path, header, c, "data.value_columns")
                for c in value_columns]
    steps: dict[str, list] = {}
    labels: dict[str, tuple[str, int]] = {}
    for number, row in _filled(path, header, rows):
        key = row[id_at].strip()
        label = row[label_at].strip() if label_at is not None else ""
        first = labels.setdefault(key, (label, number))
        if first[0] != label:
            raise DataError(f"{path}:{number}: series {key!r} has label "
                            f"{label!r} here and {first[0]!r} on line "
                            f"{first[1]}; expected one label per series")
        time = row[time_at].strip()
        stamp = (_number(time, path, str(number)) if _is_number(time)
                 else time)
        steps.setdefault(key, []).append(
            (stamp, number, [_number(row[i], path, str(number))
                             for i in value_at]))
    series, values = [], []
    for key, found in steps.items():
        try:
            found.sort(key=lambda step: step[0])
        except TypeError:
            raise DataError(f"{path}: series {key!r} mixes numeric and text "
                            f"times in {time_column!r}") from None
        for before, after in zip(found, found[1:]):
            if before[0] == after[0]:
                raise DataError(f"{path}:{after[1]}: series {key!r} has "
                                f"time {after[0]!r} twice (also line "
                                f"{before[1]})")
        series.append(np.asarray([step[2] for step in found], np.float32))
        values.append(labels[key][0])
    return _labelled(path, series, values, task=task, description=str(path))


__all__ = ["SeriesSet", "pad_series", "read_long_csv", "read_npz",
           "read_ts", "read_wide_csv", "series_lengths"]
