"""Long series to forecast, as users bring them (no TensorFlow): one series
or many, each one or more channels over time, the target channel first.

    found = read_forecast_csv(path, target="load", inputs=("temp",),
                              time_column="time", id_column="id",
                              gaps="refuse")
    found.series[0].values.shape   # (time, 1 + inputs), target first

The formats, each read with a one-line `DataError` naming the file and the
line, column or value that is wrong:

- CSV, one series: a row per step, an optional time column (ISO dates
  such as `1949-01` or `2021-05-01 00:30`, or numbers), the target column
  and any input columns.
- CSV, long format: the same with an id column; the rows of each id form
  one series (they may be interleaved).
- Monash `.tsf` (the forecasting archive's format): one series per line,
  `name:start:v1,v2,...`, `?` a missing value.

Times must increase strictly. A step missing from a regular time column,
or a value missing from a row, is a gap: refused (saying how many) unless
`gaps=fill`, which interpolates them linearly.
"""

import csv
import dataclasses
import importlib.util
import math
import pathlib
from collections.abc import Sequence

import numpy as np

from data_pipeline.config import DataError

# Embedded forecasting sets: name -> (package whose wheel ships the file,
# its path in the package, time column, target column).
EMBEDDED_FORECASTS = {
    "airline": ("sktime", "datasets/data/Airline/Airline.csv", "Date",
                "Passengers"),
    "m1_yearly": ("aeon", "datasets/data/m1_yearly_dataset/"
                  "m1_yearly_dataset.tsf", "", ""),
}
GAPS = ("refuse", "fill")
TSF_FREQUENCIES = {"yearly": "Y", "quarterly": "M3", "monthly": "M",
                   "weekly": "W", "daily": "D", "hourly": "h",
                   "half_hourly": "m30", "minutely": "m"}


@dataclasses.dataclass(frozen=True)
class LongSeries:
    """One series to forecast.

    Attributes:
        name: its id (the file's name for a single series).
        values: float32 [time, channels], the target channel first.
        times: its time stamps (`datetime64` or float64), or None.
    """

    name: str
    values: np.ndarray
    times: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def next_times(self, count: int) -> list[str] | None:
        """The `count` time stamps after the last, one step apart (None:
        no time column)."""
        if self.times is None or len(self.times) < 2:
            return None
        step = self.times[-1] - self.times[-2]
        return [_time_text(self.times[-1] + step * (k + 1))
                for k in range(count)]


@dataclasses.dataclass(frozen=True)
class ForecastSet:
    """Series read from one file, and what reading them repaired."""

    series: tuple[LongSeries, ...]
    channels: tuple[str, ...]  # the target first
    description: str
    notes: tuple[str, ...] = ()


def embedded_forecast(name: str) -> pathlib.Path:
    """The shipped file of embedded forecasting set `name`, read from the
    installed package (never imported).

    Raises:
        DataError: an unknown name, or its package is not installed.
    """
    if name not in EMBEDDED_FORECASTS:
        raise DataError(f"no embedded forecasting set {name!r}; expected "
                        f"one of {', '.join(EMBEDDED_FORECASTS)}")
    package, inner = EMBEDDED_FORECASTS[name][:2]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the {name} data ships in the {package} package: "
                        "pip install 'rnntune[series]'")
    return pathlib.Path(next(iter(spec.submodule_search_locations)), inner)


def _time_text(value) -> str:
    if isinstance(value, np.datetime64):
        return str(value)
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def parse_times(path, texts: Sequence[str], lines: Sequence[int],
                column: str) -> np.ndarray:
    """Time stamps as `datetime64` (ISO dates; dates all on the first of
    a month are months, all on the first of January years) or float64.

    Raises:
        DataError: a value that is neither, naming its line.
    """
    try:
        return np.asarray([float(t) for t in texts], np.float64)
    except ValueError:
        pass
    parsed = []
    for text, line in zip(texts, lines):
        try:
            parsed.append(np.datetime64(text.strip().replace(" ", "T", 1)
                                        if " " in text.strip() else
                                        text.strip()))
        except ValueError:
            raise DataError(
                f"{path}:{line}: time {text!r} in column {column!r} is not "
                "a number or an ISO date (such as 1949-01, 1949-01-31 or "
                "2021-05-01 00:30)") from None
    times = np.asarray(parsed)
    for unit in ("Y", "M"):
        coarse = times.astype(f"datetime64[{unit}]")
        if np.all(coarse.astype(times.dtype) == times):
            return coarse
    return times


def _checked_order(path, name: str, times: np.ndarray,
                   lines: Sequence[int]) -> None:
    steps = np.diff(times)
    zero = np.zeros((), steps.dtype)
    for i in np.flatnonzero(steps <= zero)[:1]:
        what = "twice" if steps[i] == zero else "before the previous row's"
        raise DataError(
            f"{path}:{lines[i + 1]}: series {name!r}: time "
            f"{_time_text(times[i + 1])} comes {what} (line {lines[i]}); "
            "rows must be in increasing time order, each time once")


def _regular(path, name: str, times: np.ndarray, values: np.ndarray,
             gaps: str) -> tuple[np.ndarray, np.ndarray, int]:
    """`values` on a regular grid of `times`' smallest step: missing steps
    (and missing values, NaN) are gaps, refused or filled.

    Returns:
        (times, values, gaps filled).
    """
    if times is not None and len(times) > 1:
        steps = np.diff(times)
        step = steps.min()
        counts = steps / step
        if not np.allclose(counts, np.round(counts)):
            raise DataError(f"{path}: series {name!r}: its times are not "
                            f"whole multiples of its smallest step, {step}"
                            ", apart")
        position = np.concatenate([[0], np.cumsum(np.round(counts))]
                                  ).astype(np.int64)
        grid = np.full((int(position[-1]) + 1, values.shape[1]), np.nan,
                       np.float64)
        grid[position] = values
        times = times[0] + step * np.arange(len(grid))
        values = grid
    missing = np.isnan(values).any(axis=1)
    count = int(missing.sum())
    if not count:
        return times, values.astype(np.float32), 0
    first = int(np.flatnonzero(missing)[0])
    where = (f" (the first at {_time_text(times[first])})"
             if times is not None else f" (the first at step {first})")
    if gaps != "fill":
        raise DataError(f"{path}: series {name!r} has {count} gap(s)"
                        f"{where}; set data.gaps=fill to interpolate them, "
                        "or fill them in the file")
    if missing[0] or missing[-1]:
        raise DataError(f"{path}: series {name!r} starts or ends with a "
                        "gap, which cannot be interpolated; cut it off")
    filled = values.copy()
    for channel in range(values.shape[1]):
        column = values[:, channel]
        ok = ~np.isnan(column)
        filled[:, channel] = np.interp(np.arange(len(column)),
                                       np.flatnonzero(ok), column[ok])
    return times, filled.astype(np.float32), count


def _optional_column(path: pathlib.Path, header: list[str], name: str,
                     key: str) -> int | None:
    """Where column `name` (`data.<key>_column`) is in `header`: None when
    it is absent and left at its default name (read when there), or
    empty; a name set to another that is absent is a mistake."""
    if name in header:
        return header.index(name)
    if name and name != key:
        raise DataError(f"{path}: no column {name!r} (data.{key}_column); "
                        f"the header has {', '.join(header)} (set it to "
                        f"'' for none)")
    return None


def read_forecast_csv(path: pathlib.Path, *, target: str,
                      inputs: Sequence[str] = (), time_column: str = "",
                      id_column: str = "", gaps: str = "refuse"
                      ) -> ForecastSet:
    """A CSV of one series (or many, with `id_column` in the header), a
    row per step: `target` and `inputs` columns, ordered by `time_column`
    when the header has it.

    Raises:
        DataError: a missing column, a value that is not a number, a time
            out of order or twice, a gap (unless `gaps=fill`).
    """
    path = pathlib.Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            rows = [(reader.line_num, row) for row in reader if row]
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})"
                        ) from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason})") from None
    if not target:
        raise DataError(f"{path}: name the target column (data.target_"
                        f"column), one of {', '.join(header)}")
    columns = []
    for name, key in ((target, "data.target_column"),
                      *((name, "data.value_columns") for name in inputs)):
        if name not in header:
            raise DataError(f"{path}: no column {name!r} ({key}); the "
                            f"header has {', '.join(header) or 'nothing'}")
        columns.append(header.index(name))
    time_at = _optional_column(path, header, time_column, "time")
    id_at = _optional_column(path, header, id_column, "id")
    groups: dict[str, list] = {}
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(f"{path}:{line}: {len(row)} fields, the header "
                            f"has {len(header)}")
        values = []
        for at in columns:
            text = row[at].strip()
            if text in ("", "NA", "NaN", "nan", "?"):
                values.append(math.nan)
                continue
            try:
                values.append(float(text))
            except ValueError:
                raise DataError(f"{path}:{line}: {header[at]} value "
                                f"{text!r} is not a number") from None
        key = row[id_at].strip() if id_at is not None else path.stem
        groups.setdefault(key, []).append(
            (line, row[time_at] if time_at is not None else None, values))
    if not groups:
        raise DataError(f"{path}: no rows under its header")
    series, filled = [], 0
    for name, found in groups.items():
        lines = [line for line, _, _ in found]
        values = np.asarray([v for _, _, v in found], np.float64)
        times = None
        if time_at is not None:
            times = parse_times(path, [t for _, t, _ in found], lines,
                                time_column)
            _checked_order(path, name, times, lines)
        times, values, count = _regular(path, name, times, values, gaps)
        filled += count
        series.append(LongSeries(name=name, values=values, times=times))
    notes = ((f"filled {filled} gap(s) by linear interpolation "
              "(data.gaps=fill)",) if filled else ())
    return ForecastSet(series=tuple(series),
                       channels=(target, *inputs),
                       description=str(path), notes=notes)


def read_tsf(path: pathlib.Path, *, gaps: str = "refuse") -> ForecastSet:
    """A Monash `.tsf` file: its `@attribute` header (the series' name and
    start time), `@frequency`, then `name:start:values` lines.

    Raises:
        DataError: a malformed header or line, a value that is not a
            number, a missing value (unless `gaps=fill`).
    """
    path = pathlib.Path(path)
    attributes, frequency, series, filled = [], None, [], 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})"
                        ) from None
    in_data = False
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            word, _, rest = line.partition(" ")
            if word == "@attribute":
                attributes.append(rest.split()[0])
            elif word == "@frequency":
                frequency = rest.strip()
            elif word == "@data":
                in_data = True
            continue
        fields = line.split(":")
        if len(fields) != len(attributes) + 1:
            raise DataError(f"{path}:{number}: {len(fields)} fields, its "
                            f"header declares {len(attributes)} and the "
                            "values")
        name = fields[0]
        try:
            values = np.asarray([math.nan if v.strip() == "?" else float(v)
                                 for v in fields[-1].split(",")], np.float64)
        except ValueError as e:
            raise DataError(f"{path}:{number}: series {name!r}: {e}"
                            ) from None
        times = None
        if "start_timestamp" in attributes and frequency in TSF_FREQUENCIES:
            start = fields[attributes.index("start_timestamp")]
            unit = TSF_FREQUENCIES[frequency]
            step = int(unit[1:] or 1)
            date = np.datetime64(start[:10], unit[0])
            times = date + np.arange(len(values)) * step
        times, values, count = _regular(path, name, times,
                                        values[:, None], gaps)
        filled += count
        series.append(LongSeries(name=name, values=values, times=times))
    if not series:
        raise DataError(f"{path}: no series after its @data line")
    notes = ((f"filled {filled} gap(s) by linear interpolation "
              "(data.gaps=fill)",) if filled else ())
    return ForecastSet(series=tuple(series), channels=("value",),
                       description=str(path), notes=notes)


__all__ = ["EMBEDDED_FORECASTS", "ForecastSet", "LongSeries",
           "embedded_forecast", "read_forecast_csv", "read_tsf"]
