"""Forecasting windows (no TensorFlow): each series cut into chronological
train, validation and test spans, and windows of `lookback` steps in, the
next `horizon` steps of the target out, with the figures a forecast is
judged by and the trivial forecasts it must beat.

    found = load_forecast_set(data)          # read once per process
    windows = forecast_windows(found, data)  # rebuilt per lookback/stride

Spans, per series of T steps: test is the last `test_horizons * horizon`
steps, validation the `validation_horizons * horizon` before them, train
the rest. A window belongs to the span its targets lie in; its inputs are
the steps just before its first target (earlier spans included: they are
the past), never after. Training windows start every `stride` steps;
validation and test windows every `horizon` steps (each target predicted
once, as a backtest does). A window needs `lookback` steps of history: a
series too short for one is left out of that split, and said.
"""

import dataclasses
import pathlib

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from data_pipeline.config import DataConfig, DataError
from data_pipeline.forecast_files import (EMBEDDED_FORECASTS, ForecastSet,
                                          embedded_forecast,
                                          read_forecast_csv, read_tsf)

SPLITS = ("train", "validation", "test")
METRICS = ("mae", "rmse", "mape", "smape", "mase")
BASELINES = ("naive", "seasonal_naive", "drift")
_READ: dict = {}  # split_key -> ForecastSet: one read per process


def load_forecast_set(data: DataConfig) -> ForecastSet:
    """`data`'s series, read once per process (trials that differ only in
    `lookback` or `stride` window the same series).

    Raises:
        DataError: the file is missing or malformed.
    """
    key = data.split_key
    if key not in _READ:
        _READ.clear()
        _READ[key] = _read(data)
    return _READ[key]


def _read(data: DataConfig) -> ForecastSet:
    inputs = [c.strip() for c in data.value_columns.split(",") if c.strip()]
    if data.source in EMBEDDED_FORECASTS:
        path = embedded_forecast(data.source)
        _, _, time_column, target = EMBEDDED_FORECASTS[data.source]
        if path.suffix == ".tsf":
            found = read_tsf(path, gaps=data.gaps)
        else:
            found = read_forecast_csv(path, target=target,
                                      time_column=time_column,
                                      gaps=data.gaps)
        return dataclasses.replace(found, description=(
            f"{data.source} (embedded from "
            f"{EMBEDDED_FORECASTS[data.source][0]})"))
    path = pathlib.Path(data.path).expanduser()
    if path.suffix.lower() == ".tsf":
        return read_tsf(path, gaps=data.gaps)
    return read_forecast_csv(path, target=data.target_column, inputs=inputs,
                             time_column=data.time_column,
                             id_column=data.id_column, gaps=data.gaps)


def span_starts(length: int, data: DataConfig) -> tuple[int, int]:
    """Where a series of `length` steps' validation and test spans start."""
    test = length - data.test_horizons * data.horizon
    return test - data.validation_horizons * data.horizon, test


def naive_scale(history: np.ndarray, season: int) -> float:
    """The in-sample seasonal-naive forecast's mean absolute error over
    `history` (MASE's denominator; the naive's where the history is
    shorter than two seasons)."""
    lag = season if len(history) > season else 1
    errors = np.abs(history[lag:] - history[:-lag])
    scale = float(errors.mean()) if len(errors) else 0.0
    return scale if scale > 0 else 1.0


def baseline_forecasts(history: np.ndarray, horizon: int,
                       season: int) -> dict[str, np.ndarray]:
    """The trivial forecasts from a target `history`: naive (the last
    value), seasonal naive (the last `season` values again) and drift (the
    line through the first and last values)."""
    steps = np.arange(1, horizon + 1)
    last = history[-1]
    lag = season if len(history) >= season else 1
    seasonal = history[-lag:][(steps - 1) % lag]
    slope = ((last - history[0]) / (len(history) - 1)
             if len(history) > 1 else 0.0)
    return {"naive": np.full(horizon, last, np.float64),
            "seasonal_naive": seasonal.astype(np.float64),
            "drift": last + slope * steps}


def forecast_errors(actual: np.ndarray, forecast: np.ndarray,
                    scales: np.ndarray) -> dict[str, float]:
    """MAE and RMSE over every forecast step, MAPE and sMAPE (percent,
    steps whose denominator is 0 left out) and MASE (each window's MAE
    over its series' `scales`, averaged over windows), of `forecast`
    against `actual`, both [windows, horizon]."""
    actual = np.asarray(actual, np.float64)
    forecast = np.asarray(forecast, np.float64)
    error = np.abs(actual - forecast)
    level = np.abs(actual)
    both = np.abs(actual) + np.abs(forecast)
    return {
        "mae": float(error.mean()),
        "rmse": float(np.sqrt((error ** 2).mean())),
        "mape": float(100 * (error[level > 0] / level[level > 0]).mean()),
        "smape": float(100 * (2 * error[both > 0] / both[both > 0]).mean()),
        "mase": float((error.mean(axis=1) / scales).mean()),
    }


@dataclasses.dataclass(frozen=True)
class Windows:
    """One split's windows.

    Attributes:
        inputs: float32 [windows, lookback, channels], raw values.
        targets: float32 [windows, horizon], the target's next steps.
        series: int32 [windows], which series each came from.
        origins: int64 [windows], its first target's step in the series.
        weights: float32 [windows], 1 / the squared in-sample naive error
            of its series, scaled to mean 1 over the training windows:
            the loss weighs every series alike whatever its units (all 1
            for one series).
    """

    inputs: np.ndarray
    targets: np.ndarray
    series: np.ndarray
    origins: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


@dataclasses.dataclass(frozen=True)
class ForecastWindows:
    """Every split's windows, and what judging a forecast needs."""

    splits: dict[str, Windows]
    found: ForecastSet
    lookback: int
    horizon: int
    season: int
    scales: dict[str, np.ndarray]  # split -> [series] MASE denominators
    notes: tuple[str, ...] = ()

    def baselines(self, name: str) -> dict[str, np.ndarray]:
        """The trivial forecasts [windows, horizon] of split `name`."""
        windows = self.splits[name]
        found = {b: [] for b in BASELINES}
        for s, t in zip(windows.series, windows.origins):
            history = self.found.series[s].values[:t, 0].astype(np.float64)
            for b, f in baseline_forecasts(history, self.horizon,
                                           self.season).items():
                found[b].append(f)
        return {b: np.asarray(f).reshape(-1, self.horizon)
                for b, f in found.items()}

    def errors(self, name: str, forecast: np.ndarray) -> dict[str, float]:
        """`forecast_errors` of a [windows, horizon] forecast of split
        `name`."""
        windows = self.splits[name]
        return forecast_errors(windows.targets, forecast,
                               self.scales[name][windows.series])


def _origins(data: DataConfig, length: int,
             validation_in_train: bool) -> dict[str, range]:
    validation, test = span_starts(length, data)
    h = data.horizon
    train_end = test if validation_in_train else validation
    return {"train": range(data.lookback, train_end - h + 1, data.stride),
            "validation": range(max(validation, 0), test - h + 1, h),
            "test": range(test, length - h + 1, h)}


def forecast_windows(found: ForecastSet, data: DataConfig, *,
                     validation_in_train: bool = False) -> ForecastWindows:
    """Cuts every series of `found` into its splits' windows
    (NumPy's `sliding_window_view`: views, copied once per split).

    `validation_in_train`: training windows run on through the validation
    span (a chosen configuration retrained on both, `--retrain-best`);
    the validation windows stay, no longer held out.

    Raises:
        DataError: no series is long enough for a training, validation
            or test window.
    """
    lookback, horizon = data.lookback, data.horizon
    parts = {name: [] for name in SPLITS}
    scales = {name: np.ones(len(found.series)) for name in SPLITS}
    short = {name: 0 for name in SPLITS}
    # The loss weights' scale: each series' in-sample naive error over
    # its training span, whatever windows it has.
    weight_scales = np.ones(len(found.series))
    for s, series in enumerate(found.series):
        values = series.values
        validation, test = span_starts(len(series), data)
        weight_scales[s] = naive_scale(
            values[:max(validation, 2), 0].astype(np.float64), data.season)
        for name, starts in _origins(data, len(series),
                                     validation_in_train).items():
            origins = np.asarray([t for t in starts if t >= lookback],
                                 np.int64)
            if not len(origins):
                short[name] += 1
                continue
            # MASE's in-sample errors: the steps before the split's span
            # (training's own span for train and validation).
            before = test if name == "test" else validation
            scales[name][s] = naive_scale(
                values[:max(before, 2), 0].astype(np.float64), data.season)
            # [T - lookback, channels, lookback]: the window that ends
            # just before step t is row t - lookback.
            inputs = sliding_window_view(values[:-1], lookback, axis=0)
            targets = sliding_window_view(values[:, 0], horizon)
            parts[name].append((
                np.swapaxes(inputs[origins - lookback], 1, 2),
                targets[origins], np.full(len(origins), s, np.int32),
                origins))
    splits, notes = {}, []
    for name in SPLITS:
        if not parts[name]:
            raise DataError(
                f"{found.description}: no series is long enough for a "
                f"{name} window (data.lookback={lookback} steps in, "
                f"data.horizon={horizon} out, spans of "
                f"{data.validation_horizons} and {data.test_horizons} "
                "horizon(s) held out for validation and test)")
        if short[name]:
            notes.append(f"{short[name]} of {len(found.series)} series too "
                         f"short for a {name} window of lookback "
                         f"{lookback}: left out of {name}")
        inputs, targets, series, origins = (
            np.concatenate(column) for column in zip(*parts[name]))
        splits[name] = (inputs.astype(np.float32),
                        targets.astype(np.float32), series, origins)
    norm = float(np.mean(1.0 / weight_scales[splits["train"][2]] ** 2))
    windows = {name: Windows(
        inputs=inputs, targets=targets, series=series, origins=origins,
        weights=((1.0 / weight_scales[series] ** 2) / norm
                 ).astype(np.float32))
        for name, (inputs, targets, series, origins) in splits.items()}
    return ForecastWindows(splits=windows, found=found, lookback=lookback,
                           horizon=horizon, season=data.season,
                           scales=scales, notes=(*found.notes, *notes))


__all__ = ["BASELINES", "METRICS", "ForecastWindows", "Windows",
           "baseline_forecasts", "forecast_errors", "forecast_windows",
           "load_forecast_set", "naive_scale", "span_starts"]
