"""Regression on numeric series end to end: the tecator smoke twin's run,
its metrics (MSE loss, MAE, RMSE, no accuracy), its model on raw values
(output in the targets' units), `predict`, `compare`, `report` and a
Keras Tuner study ranked by validation MAE; the settings that do not fit
a regression refused in one line; per-series standardization; balanced
accuracy where a classification's classes are uneven."""

import json
import math

import keras
import numpy as np
import pytest
from commands import run_cli

import rnntune  # noqa: F401  registers what exported models hold
from data_pipeline.config import DataConfig
from data_pipeline.series import embedded_series, load_series_splits
from launch.presets import get_preset
from models.layers import SeriesStandardization
from tuning.trial.config import ConfigError, apply_overrides
from tuning.trial.history import read_history
from tuning.trial.optimization import BalancedAccuracy
from tuning.trial.run import RunDir
from tuning.trial.train import train_and_evaluate
from tuning.tune import run_study

from studies import study_spec


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """The tecator smoke twin, trained once (seconds)."""
    config = get_preset("tecator", smoke=True)
    workdir = tmp_path_factory.mktemp("regression_run")
    metrics = train_and_evaluate(config, workdir, report=lambda _: None)
    return RunDir(workdir), config, metrics


def test_a_regression_run_records_errors_not_accuracies(regression_run):
    run, config, metrics = regression_run
    assert metrics.task == "regression"
    assert metrics.objective == "val_loss"
    assert math.isnan(metrics.test_accuracy)
    assert math.isnan(metrics.best_val_accuracy)
    for figure in ("test_loss", "test_mae", "test_rmse", "best_val_mae",
                   "best_val_rmse"):
        assert np.isfinite(getattr(metrics, figure)), figure
    assert metrics.test_rmse == pytest.approx(math.sqrt(metrics.test_loss),
                                              rel=1e-4)
    assert metrics.test_figure == ("test RMSE", metrics.test_rmse)
    rows = read_history(run.history_path)
    assert len(rows) == config.train.epochs
    for row in rows:
        assert math.isnan(row["accuracy"]) and math.isnan(row["val_accuracy"])
        assert row["val_rmse"] == pytest.approx(math.sqrt(row["val_loss"]),
                                                rel=1e-4)
    assert (run / run.LABELS).read_text() == ""  # no classes
    # The output is scaled to the training targets, whose variance is the
    # loss of predicting their mean: the verdict's baseline.
    splits = load_series_splits(config.data)
    runtime = run.read_runtime()
    targets = splits.train.labels.astype(np.float64)
    assert runtime["target"]["mean"] == pytest.approx(targets.mean())
    assert runtime["target"]["std"] == pytest.approx(targets.std())
    assert runtime["baseline_loss"] == pytest.approx(targets.var())
    assert runtime["class_names"] == []


def test_the_exported_regressor_predicts_raw_target_values(regression_run,
                                                           tmp_path):
    run, config, metrics = regression_run
    model = keras.models.load_model(run.model_path)
    splits = load_series_splits(config.data)
    values = np.stack(list(splits.test.series)).astype(np.float32)
    lengths = np.full(len(values), values.shape[1], np.int32)
    predicted = model.predict({"values": values, "lengths": lengths},
                              verbose=0)[:, 0]
    errors = predicted - splits.test.labels
    assert math.sqrt(np.mean(errors ** 2)) == pytest.approx(
        metrics.test_rmse, rel=1e-4)
    assert np.mean(np.abs(errors)) == pytest.approx(metrics.test_mae,
                                                    rel=1e-4)
    # `predict` on the shipped test file: one number per series, the
    # model's own.
    _, test_file = embedded_series("tecator")
    out = run_cli("predict", "--model", str(run.model_path), "--file",
                  str(test_file))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(predicted)
    printed = np.array([float(line.split("\t")[0]) for line in lines])
    np.testing.assert_allclose(printed, predicted, rtol=1e-4, atol=1e-4)
    assert lines[0].endswith("series 1 (100 steps)")


def test_regression_targets_split_at_random_not_by_value():
    data = get_preset("tecator").data
    splits = load_series_splits(data)
    assert splits.class_names == ()
    assert splits.train.labels.dtype == np.float32
    sizes = [len(splits.train), len(splits.validation), len(splits.test)]
    assert sizes == [138, 34, 43]  # the shipped 172 / 43, 20% validation
    again = load_series_splits(data)
    assert again.train.fingerprint() == splits.train.fingerprint()
    other = load_series_splits(DataConfig(**{**data.__dict__, "seed": 7}))
    assert other.train.fingerprint() != splits.train.fingerprint()


def test_settings_that_do_not_fit_a_regression_are_refused(tmp_path):
    tecator = get_preset("tecator")
    with pytest.raises(ConfigError, match=r"train.objective='val_accuracy': "
                       r"expected one of val_loss, val_mae, val_rmse for "
                       r"data.task=regression"):
        apply_overrides(tecator, {"train.objective": "val_accuracy"})
    with pytest.raises(ConfigError, match="train.label_smoothing=0.1: "
                       "expected 0 for data.task=regression"):
        apply_overrides(tecator, {"train.label_smoothing": 0.1})
    with pytest.raises(ConfigError, match="train.objective='val_mae': "
                       "expected one of val_accuracy, val_loss for "
                       "data.task=classification"):
        apply_overrides(get_preset("basic_motions"),
                        {"train.objective": "val_mae"})
    with pytest.raises(ConfigError, match="data.task='regression': expected "
                       "classification for a text source"):
        apply_overrides(get_preset("smoke"), {"data.task": "regression"})
    # A classification file read as a regression: its header says which.
    out = run_cli("train", "--preset", "tecator", "--smoke", "--set",
                  "data.source=japanese_vowels", "--workdir",
                  str(tmp_path / "run"))
    assert out.returncode == 2
    assert "a classification file (its header); data.task is regression" \
        in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_series_standardization_keeps_shape_and_drops_level_and_scale():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 6, 3)).astype(np.float32)
    values[1, 4:] = 99.0  # padding past the second series' length
    lengths = np.array([6, 4], np.int32)
    layer = SeriesStandardization()
    out = keras.ops.convert_to_numpy(layer([values, lengths]))
    shifted = keras.ops.convert_to_numpy(layer([values * 5 + 3, lengths]))
    np.testing.assert_allclose(out, shifted, atol=1e-4)  # level, scale gone
    real = out[1, :4]
    np.testing.assert_allclose(real.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(real.std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(out[1, 4:], 0)  # padding ignored, zero
    expected = (values[1, :4] - values[1, :4].mean(0)) / values[1, :4].std(0)
    np.testing.assert_allclose(real, expected, atol=1e-4)


def test_balanced_accuracy_is_the_mean_of_per_class_recalls():
    metric = BalancedAccuracy(3)
    labels = np.array([0, 0, 0, 0, 1, 2])
    # Right on three of class 0, on class 1, wrong on class 2.
    probabilities = np.eye(3, dtype=np.float32)[[0, 0, 0, 1, 1, 0]]
    metric.update_state(labels[:3], probabilities[:3])
    metric.update_state(labels[3:], probabilities[3:])  # summed, not mean
    assert float(metric.result()) == pytest.approx((3 / 4 + 1 + 0) / 3)
    binary = BalancedAccuracy(2)
    binary.update_state(np.array([0, 0, 0, 1]),
                        np.array([[0.2], [0.7], [0.1], [0.9]]))
    assert float(binary.result()) == pytest.approx((2 / 3 + 1) / 2)


@pytest.mark.slow
def test_compare_and_report_speak_of_errors_for_a_regression(tmp_path):
    out = run_cli("compare", "--preset", "tecator", "--smoke", "--cells",
                  "gru,lstm", "--ensemble", "--workdir", str(tmp_path),
                  timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "test RMSE" in out.stdout and "test acc" not in out.stdout
    rows = json.loads((tmp_path / "comparison.json").read_text())
    chosen = [row for row in rows if row["chosen"]]
    assert len(chosen) == 1 and chosen[0]["test_rmse"] > 0
    assert all("test_accuracy" not in row for row in rows)
    # The cells' ensemble: its own row, and the test split's, only if it
    # beat the best cell on validation.
    members = json.loads((tmp_path / "ensemble" / "members.json")
                         .read_text())
    assert sorted(members["pool"]) == ["gru", "lstm"]
    assert (chosen[0]["cell"] == "ensemble") == members["chosen"]
    assert ("test" in members) == members["chosen"]
    assert [r["cell"] for r in rows] == ["gru", "lstm", "ensemble"]
    assert rows[2]["best_val_loss"] == pytest.approx(
        members["ensemble_val_loss"])
    out = run_cli("report", "--workdir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "best val RMSE" in out.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["task"] == "regression"
    assert report["chosen"] == {"run": chosen[0]["cell"],
                                "test_rmse": pytest.approx(
                                    chosen[0]["test_rmse"])}
    assert len(report["runs"]) == 2  # the ensemble trained no curves
    for entry in report["runs"]:
        assert entry["verdict"] in ("healthy", "overfitting", "underfitting")
        assert entry["final_gap"] is not None


@pytest.mark.slow
def test_a_study_ranks_a_regression_by_validation_mae(tmp_path):
    base = get_preset("tecator", smoke=True)
    spec = study_spec(base, {"model.cell": {"choice": ["gru", "lstm"]}},
                      backend="keras-tuner", algorithm="grid",
                      max_trials=2, max_epochs=2, objective="val_mae")
    lines = []
    best = run_study(tmp_path, spec, report=lines.append)
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert {r["status"] for r in rows} == {"completed"}
    assert min(rows, key=lambda r: r["best_val_mae"])["trial_id"] \
        == best["trial_id"]
    for row in rows:
        assert row["best_objective"] == row["best_val_mae"]
    assert best["test_rmse"] > 0 and "test_accuracy" not in best
    assert any("test RMSE" in line for line in lines)
    chosen = [r for r in rows if r.get("test_rmse") is not None]
    assert [r["trial_id"] for r in chosen] == [best["trial_id"]]
    with pytest.raises(ConfigError, match="objective 'val_accuracy': "
                       "expected one of val_loss, val_mae, val_rmse"):
        study_spec(base, {"model.cell": {"choice": ["gru"]}},
                   backend="keras-tuner", algorithm="grid", max_trials=1,
                   objective="val_accuracy")
