"""Forecasting end to end: reading long series (CSV one or many, `.tsf`),
the errors a bad file gets, chronological windows with nothing from the
future, the trivial forecasts and their published figures, statistics from
the training span only, a run of the airline smoke twin (its figures beside
the baselines, the forecast drawn, the exported model on raw values),
`predict` from a history CSV, and a study over the lookback."""

import json
import math

import numpy as np
import pytest
from commands import run_cli

import rnntune  # noqa: F401  registers what exported models hold
from data_pipeline.config import DataConfig, DataError
from data_pipeline.forecast import (forecast_windows, load_forecast_set,
                                    span_starts)
from data_pipeline.forecast_arrays import ForecastArrays
from data_pipeline.forecast_files import (embedded_forecast,
                                          read_forecast_csv, read_tsf)
from launch.presets import get_preset
from tuning.trial.run import RunDir
from tuning.trial.train import train_and_evaluate


def _csv(tmp_path, text, name="history.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _monthly(count, start=100.0):
    months = np.arange("2000-01", "2100-01", dtype="datetime64[M]")[:count]
    values = start + np.arange(count) + 10 * np.sin(np.arange(count) / 2)
    return months, values


def test_a_csv_series_reads_with_its_times_target_first(tmp_path):
    months, values = _monthly(30)
    path = _csv(tmp_path, "month,temp,load\n" + "".join(
        f"{m},{i},{v}\n" for i, (m, v) in enumerate(zip(months, values))))
    found = read_forecast_csv(path, target="load", inputs=("temp",),
                              time_column="month")
    (series,) = found.series
    assert found.channels == ("load", "temp")
    assert series.values.shape == (30, 2)
    np.testing.assert_allclose(series.values[:, 0], values, rtol=1e-6)
    assert str(series.times[0]) == "2000-01"
    assert series.next_times(2) == ["2002-07", "2002-08"]


def test_long_format_gives_one_series_per_id_in_time_order(tmp_path):
    rows = [("b", 2, 20.0), ("a", 1, 1.0), ("b", 1, 10.0), ("a", 2, 2.0),
            ("a", 3, 3.0), ("b", 3, 30.0)]
    path = _csv(tmp_path, "id,time,y\n" + "".join(
        f"{i},{t},{y}\n" for i, t, y in sorted(rows, key=lambda r: r[1])))
    found = read_forecast_csv(path, target="y", time_column="time",
                              id_column="id")
    assert {s.name: s.values[:, 0].tolist() for s in found.series} == {
        "a": [1.0, 2.0, 3.0], "b": [10.0, 20.0, 30.0]}


@pytest.mark.parametrize("text, words", [
    ("time,y\n1,1\n2,x\n", ["history.csv:3", "'x'", "not a number"]),
    ("time,z\n1,1\n", ["no column 'y'", "time, z"]),
    ("time,y\n1,1\n3,2\n2,3\n", ["history.csv:4", "increasing time order"]),
    ("time,y\n1,1\n1,2\n", ["history.csv:3", "twice"]),
    ("time,y\n1,1\n2,2\n5,5\n6,6\n", ["2 gap(s)", "data.gaps=fill"]),
    ("time,y\n1,1\n2,\n3,3\n", ["1 gap(s)", "data.gaps=fill"]),
])
def test_a_bad_history_is_refused_naming_the_line_or_count(tmp_path, text,
                                                            words):
    path = _csv(tmp_path, text)
    with pytest.raises(DataError) as error:
        read_forecast_csv(path, target="y", time_column="time")
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_a_named_time_or_id_column_must_be_there(tmp_path):
    path = _csv(tmp_path, "when,y\n1,1\n2,2\n")
    # Left at their default names, they are read when there.
    found = read_forecast_csv(path, target="y", time_column="time",
                              id_column="id")
    assert len(found.series) == 1 and found.series[0].times is None
    for key, value in (("time_column", "date"), ("id_column", "store")):
        with pytest.raises(DataError) as error:
            read_forecast_csv(path, target="y", **{key: value})
        assert str(error.value) == (
            f"{path}: no column {value!r} (data.{key}); the header has "
            "when, y (set it to '' for none)")


def test_gaps_filled_on_request_are_interpolated_and_said(tmp_path):
    path = _csv(tmp_path, "time,y\n1,1\n2,2\n5,5\n6,6\n")
    found = read_forecast_csv(path, target="y", time_column="time",
                              gaps="fill")
    assert found.series[0].values[:, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert found.notes == ("filled 2 gap(s) by linear interpolation "
                           "(data.gaps=fill)",)


def test_a_tsf_file_reads_series_with_missing_values_as_gaps(tmp_path):
    path = _csv(tmp_path, "# a comment\n@relation x\n@attribute series_name "
                "string\n@attribute start_timestamp date\n@frequency yearly"
                "\n@horizon 2\n@data\nT1:1990-01-01 00-00-00:1,2,3,4\n"
                "T2:2000-01-01 00-00-00:5,?,7\n", name="set.tsf")
    with pytest.raises(DataError, match="'T2' has 1 gap"):
        read_tsf(path)
    found = read_tsf(path, gaps="fill")
    assert [s.name for s in found.series] == ["T1", "T2"]
    assert found.series[1].values[:, 0].tolist() == [5, 6, 7]
    assert str(found.series[0].times[-1]) == "1993"


def test_windows_are_chronological_and_never_read_the_future():
    data = get_preset("airline").data
    found = load_forecast_set(data)
    windows = forecast_windows(found, data)
    values = found.series[0].values[:, 0]
    validation, test = span_starts(len(values), data)
    assert (validation, test) == (72, 108)
    for name, (low, high) in {"train": (0, validation),
                              "validation": (validation, test),
                              "test": (test, len(values))}.items():
        split = windows.splits[name]
        for inputs, targets, origin in zip(split.inputs, split.targets,
                                           split.origins):
            # Targets inside the split's span, inputs just before them.
            assert low <= origin and origin + data.horizon <= high
            np.testing.assert_array_equal(
                targets, values[origin:origin + data.horizon])
            np.testing.assert_array_equal(
                inputs[:, 0], values[origin - data.lookback:origin])
    assert windows.splits["test"].origins.tolist() == [108]
    # Another lookback windows the same series again, without reading.
    longer = DataConfig(**{**data.__dict__, "lookback": 24})
    assert load_forecast_set(longer) is found
    other = forecast_windows(found, longer)
    assert other.splits["train"].inputs.shape[1:] == (24, 1)
    assert len(other.splits["train"]) < len(windows.splits["train"])
    # Retraining a choice: training windows run on to the test span.
    both = forecast_windows(found, data, validation_in_train=True)
    assert both.splits["train"].origins.tolist() == list(
        range(data.lookback, test - data.horizon + 1))
    for name in ("validation", "test"):
        np.testing.assert_array_equal(both.splits[name].targets,
                                      windows.splits[name].targets)


def test_the_trivial_forecasts_give_the_published_airline_figures():
    """The seasonal naive forecast of the last 36 months from the 108
    before: MAPE 13.19 %, MASE 1.965, as published."""
    data = get_preset("airline").data
    windows = forecast_windows(load_forecast_set(data), data)
    figures = windows.errors("test", windows.baselines("test")[
        "seasonal_naive"])
    assert figures["mape"] == pytest.approx(13.19, abs=0.005)
    assert figures["mase"] == pytest.approx(1.965, abs=0.0005)
    assert windows.errors("test", windows.splits["test"].targets
                          )["mase"] == 0


def test_statistics_come_from_the_training_span_only(tmp_path):
    from data_pipeline.forecast_arrays import ForecastArrays

    values = np.r_[np.ones(40), np.full(20, 1000.0)]  # only later spans big
    path = _csv(tmp_path, "y\n" + "".join(f"{v}\n" for v in values))
    data = DataConfig(source="series", path=str(path), task="forecast",
                      target_column="y", normalize="channel", lookback=5,
                      horizon=10)
    arrays = ForecastArrays.build(data)
    assert arrays.mean.tolist() == [1.0]
    assert arrays.target_mean == 1.0
    assert arrays.values["test"].max() == 1000.0


def test_too_short_a_series_is_one_line_naming_the_keys(tmp_path):
    path = _csv(tmp_path, "y\n" + "1\n" * 20)
    data = DataConfig(source="series", path=str(path), task="forecast",
                      target_column="y", lookback=12, horizon=6)
    with pytest.raises(DataError, match="data.lookback=12"):
        forecast_windows(load_forecast_set(data), data)


@pytest.fixture(scope="module")
def airline_run(tmp_path_factory):
    """The airline smoke twin, trained once (seconds)."""
    config = get_preset("airline", smoke=True)
    workdir = tmp_path_factory.mktemp("airline_run")
    metrics = train_and_evaluate(config, workdir, report=lambda _: None)
    return RunDir(workdir), config, metrics


def test_a_forecast_run_records_its_figures_beside_the_baselines(
        airline_run):
    run, config, metrics = airline_run
    assert metrics.task == "forecast" and metrics.regression
    for name in ("test_mae", "test_rmse", "test_mape", "test_smape",
                 "test_mase"):
        assert math.isfinite(getattr(metrics, name)), name
    assert metrics.test_baselines["seasonal_naive"]["mape"] == pytest.approx(
        13.19, abs=0.005)
    lines = metrics.forecast_lines()
    assert [line.split()[0] for line in lines[1:]] == [
        "model", "naive", "seasonal_naive", "drift"]
    assert json.loads(run.metrics_path.read_text())["test_baselines"]
    assert (run / run.FORECAST_PLOT).stat().st_size > 10_000
    # R^2 against one number in the passengers' units (the windows are
    # standardized in the model, not the loss): the training targets'
    # variance, one series weighing 1.
    targets = ForecastArrays.build(config.data).labels["train"]
    baseline = run.read_runtime()["baseline_loss"]
    assert baseline == pytest.approx(float(targets.astype(float).var()),
                                     rel=1e-6)


def test_the_exported_forecaster_takes_raw_values(airline_run):
    import keras

    from data_pipeline.forecast_arrays import ForecastArrays

    run, config, metrics = airline_run
    model = keras.models.load_model(run.model_path)
    arrays = ForecastArrays.build(config.data)
    test = arrays.forecast.splits["test"]
    forecast = model.predict({"values": test.inputs,
                              "lengths": arrays.lengths["test"]}, verbose=0)
    assert forecast.shape == (1, 36)
    assert arrays.forecast.errors("test", forecast)["mase"] == \
        pytest.approx(metrics.test_mase, rel=1e-5)
    # In passengers (hundreds), not in the windows' standardized units.
    assert 100 < float(forecast.mean()) < 1000


def test_predict_prints_the_next_steps_with_their_time_stamps(airline_run,
                                                            tmp_path,
                                                            capsys):
    from launch.cli import main

    run, _, _ = airline_run
    history = tmp_path / "airline.csv"
    history.write_text(embedded_forecast("airline").read_text())
    result = run_cli("predict", "--model", str(run.model_path), "--file",
                     str(history))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "series\ttime\tforecast"
    assert len(lines) == 37
    assert lines[1].split("\t")[:2] == ["airline", "1961-01"]
    assert lines[-1].split("\t")[1] == "1963-12"
    short = _csv(tmp_path, "Date,Passengers\n1949-01,112\n", name="s.csv")
    code = main(["predict", "--model", str(run.model_path), "--file",
                 str(short)])
    err = capsys.readouterr().err
    assert code == 2 and "has 1 steps" in err and "Traceback" not in err
    # A gap: the advice is one predict can follow (it sets no data.*).
    gap = _csv(tmp_path, "Date,Passengers\n" + "".join(
        f"1949-{m:02d},{100 + m}\n" for m in range(1, 13) if m != 5),
        name="gap.csv")
    code = main(["predict", "--model", str(run.model_path), "--file",
                 str(gap)])
    err = capsys.readouterr().err
    assert code == 2 and err.endswith(
        "has 1 gap(s) (the first at 1949-05); fill them in the file (the "
        "model's run refused gaps, data.gaps=refuse)\n")
    # Without the run's time column, the steps are counted.
    plain = _csv(tmp_path, "Passengers\n" + "".join(
        f"{100 + m}\n" for m in range(24)), name="plain.csv")
    result = run_cli("predict", "--model", str(run.model_path), "--file",
                     str(plain))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split("\t")[1] == "+1"
    assert "no column 'Date' (the run's time column)" in result.stderr


def test_settings_that_do_not_fit_a_forecast_are_one_line(tmp_path,
                                                          capsys):
    from launch.cli import main

    for args, words in (
            (["--set", "data.lookback=200"], "data.lookback=200"),
            (["--set", "train.objective=val_accuracy"],
             "expected one of val_loss, val_mae"),
            (["--set", "data.source=imdb"], "for task=forecast")):
        code = main(["train", "--preset", "airline", "--smoke",
                     "--workdir", str(tmp_path / "w"), *args])
        err = capsys.readouterr().err
        assert code == 2, err
        assert words in err and "Traceback" not in err
    code = main(["compare", "--preset", "airline", "--smoke", "--ensemble",
                 "--workdir", str(tmp_path / "c")])
    assert code == 2 and "--ensemble: not for data.task=forecast" in \
        capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["keras-tuner", "ray"])
def test_a_study_tunes_the_lookback_and_reports_the_baselines(tmp_path,
                                                              backend):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"data.lookback": {"choice": [12, 24]}}))
    workdir = tmp_path / "study"
    result = run_cli("tune", "--preset", "airline", "--smoke", "--space",
                     str(space), "--backend", backend, "--algorithm", "grid",
                     "--max-trials", "2", "--retrain-best", "--workdir",
                     str(workdir))
    assert result.returncode == 0, result.stderr
    assert "seasonal_naive" in result.stdout
    lookbacks = sorted(json.loads((d / "config.json").read_text())[
        "config"]["data"]["lookback"] for d in (workdir / "trials").iterdir())
    assert lookbacks == [12, 24]
    # --retrain-best: the choice retrained on windows through the
    # validation span, for its best epoch.
    best = json.loads((workdir / "best" / "hparams.json").read_text())
    assert best["retrained_on_train_and_validation"] is True
    trial = json.loads((workdir / "trials" / best["trial_id"]
                        / "config.json").read_text())["runtime"]
    retrained = json.loads((workdir / "best" / "retrain"
                            / "config.json").read_text())["runtime"]
    assert (retrained["examples"]["train"]
            == trial["examples"]["train"] + 36)  # 36 more origins
    assert retrained["examples"]["test"] == trial["examples"]["test"]
    assert best["test_mase"] > 0
    report = run_cli("report", "--workdir", str(workdir))
    assert report.returncode == 0, report.stderr
    assert "test MASE" in report.stdout and "seasonal_naive" in report.stdout
    # The study's model forecasts from a history, read with its run's
    # settings (config.json beside it).
    history = tmp_path / "airline.csv"
    history.write_text(embedded_forecast("airline").read_text())
    forecast = run_cli("predict", "--model",
                       str(workdir / "best" / "model.keras"), "--file",
                       str(history))
    assert forecast.returncode == 0, forecast.stderr
    assert forecast.stdout.splitlines()[1].startswith("airline\t1961-01\t")
