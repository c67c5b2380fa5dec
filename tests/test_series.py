"""Numeric series end to end: a run on an embedded UCR/UEA set, what it
writes, its model on raw values (masked from the lengths, normalized on
the training steps inside it), `predict` on each file format, `compare`
and a Keras Tuner study on series."""

import json

import keras
import numpy as np
import pytest
from commands import run_cli

import rnntune  # noqa: F401  registers what exported models hold
from data_pipeline.config import DataConfig
from data_pipeline.series import embedded_series, load_series_splits, read_ts
from data_pipeline.series_arrays import channel_statistics
from launch.presets import get_preset
from tuning.trial.config import ConfigError, apply_overrides
from tuning.trial.run import RunDir
from tuning.trial.train import train_and_evaluate
from tuning.tune import run_study

from studies import study_spec


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    """The japanese_vowels smoke twin, trained once (seconds)."""
    config = get_preset("japanese_vowels", smoke=True)
    workdir = tmp_path_factory.mktemp("series_run")
    metrics = train_and_evaluate(config, workdir, report=lambda _: None)
    return RunDir(workdir), config, metrics


def test_a_series_run_writes_what_a_text_run_does_but_a_vocabulary(
        series_run):
    run, config, metrics = series_run
    assert not (run / run.VOCABULARY).exists()
    assert (run / run.LABELS).read_text().split() == [str(i) for i in
                                                      range(1, 10)]
    runtime = run.read_runtime()
    assert runtime["channels"] == 12
    assert runtime["steps"] == 29  # the longest series, none resampled
    assert runtime["examples"] == {"train": 216, "validation": 54,
                                   "test": 370}
    assert metrics.epochs_run == config.train.epochs
    assert np.isfinite(metrics.test_accuracy)
    assert run.read_config() == config


def test_normalization_is_fitted_on_the_training_steps_only(series_run):
    run, config, _ = series_run
    splits = load_series_splits(config.data)
    mean, variance = channel_statistics(splits.train, 29)
    normalization = run.read_runtime()["normalization"]
    np.testing.assert_allclose(normalization["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(normalization["variance"], variance,
                               rtol=1e-6)
    # Not the padded array's statistics, nor those of train and test.
    padded = np.zeros((len(splits.train), 29, 12), np.float32)
    for row, series in enumerate(splits.train.series):
        padded[row, :len(series)] = series
    assert not np.allclose(padded.reshape(-1, 12).mean(axis=0), mean,
                           rtol=1e-3)
    everything = np.concatenate([*splits.train.series, *splits.test.series])
    assert not np.allclose(everything.mean(axis=0), mean, rtol=1e-3)
    # The exported model holds them, so it takes raw values.
    model = keras.models.load_model(run.model_path)
    layer = model.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(layer.mean), mean, rtol=1e-6)


def test_padding_is_masked_by_length_and_zeros_stay_values(series_run):
    run, *_ = series_run
    model = keras.models.load_model(run.model_path)
    test = read_ts(embedded_series("japanese_vowels")[1])
    values, lengths = test.padded()
    probs = model.predict({"values": values, "lengths": lengths}, verbose=0)
    # Longer padding full of large values changes nothing.
    wide = np.full((len(values), 40, 12), 1e3, np.float32)
    for row, n in enumerate(lengths):
        wide[row, :n] = values[row, :n]
    again = model.predict({"values": wide, "lengths": lengths}, verbose=0)
    np.testing.assert_allclose(again, probs, atol=1e-5)
    # A real step of zeros is a step: one more of them changes the output.
    longer = np.zeros_like(wide)
    longer[:, :29] = values
    more = model.predict({"values": longer,
                          "lengths": np.minimum(lengths + 1, 40)}, verbose=0)
    assert not np.allclose(more, probs, atol=1e-4)


def test_the_model_reads_a_series_as_its_run_did(series_run, tmp_path):
    # Its first data.sequence_length steps, whoever calls it: predict,
    # an ensemble, a user's own code.
    run, config, _ = series_run
    model = keras.models.load_model(run.model_path)
    steps = config.data.sequence_length
    assert model.get_layer("first_steps").steps == steps
    values = np.random.default_rng(0).normal(
        size=(4, steps + 11, 12)).astype(np.float32)
    long = model.predict({"values": values,
                          "lengths": np.full(4, steps + 11)}, verbose=0)
    cut = model.predict({"values": values[:, :steps],
                         "lengths": np.full(4, steps)}, verbose=0)
    np.testing.assert_allclose(long, cut, atol=1e-6)
    model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras")
    assert again.get_layer("first_steps").get_config()["steps"] == steps


@pytest.mark.slow
def test_predict_reads_every_format_and_matches_the_test_accuracy(
        series_run, tmp_path):
    run, config, metrics = series_run
    test_file = embedded_series("japanese_vowels")[1]
    out = run_cli("predict", "--model", str(run.model_path), "--file",
                  str(test_file))
    assert out.returncode == 0, out.stderr
    lines = [line.split("\t") for line in out.stdout.splitlines()]
    test = read_ts(test_file)
    assert len(lines) == 370
    assert lines[0][2] == f"series 1 ({len(test.series[0])} steps)"
    accuracy = np.mean([line[0] == label
                        for line, label in zip(lines, test.labels)])
    assert accuracy == pytest.approx(metrics.test_accuracy, abs=1e-6)
    # The same series as .npz (channels first, with lengths) and a long
    # CSV give the same lines.
    values, lengths = test.padded()
    np.savez(tmp_path / "test.npz", X=values[:5].transpose(0, 2, 1),
             lengths=lengths[:5])
    rows = ["id,time," + ",".join(f"c{i}" for i in range(12))]
    for i, series in enumerate(test.series[:5]):
        rows += [f"s{i},{t}," + ",".join(map(str, step))
                 for t, step in reversed(list(enumerate(series)))]
    (tmp_path / "long.csv").write_text("\n".join(rows) + "\n")
    for name, data in (("test.npz", {"channels_first": True}),
                       ("long.csv", {"value_columns": ",".join(
                           f"c{i}" for i in range(12))})):
        # The run's own reading settings come from its config.json.
        other = RunDir(tmp_path / name.replace(".", "_"))
        other.path.mkdir()
        (other.path / run.MODEL).write_bytes(run.model_path.read_bytes())
        (other / run.LABELS).write_text((run / run.LABELS).read_text())
        other.write_config(apply_overrides(config, {
            f"data.{k}": v for k, v in data.items()}), {})
        found = run_cli("predict", "--model", str(other.model_path),
                        "--file", str(tmp_path / name))
        assert found.returncode == 0, found.stderr
        got = [line.split("\t") for line in found.stdout.splitlines()]
        assert [g[:2] for g in got] == [line[:2] for line in lines[:5]]


@pytest.mark.slow
def test_predict_says_what_is_wrong_in_one_line(series_run, smoke_run,
                                                tmp_path):
    run, *_ = series_run
    motions = embedded_series("basic_motions")[1]
    out = run_cli("predict", "--model", str(run.model_path), "--file",
                  str(motions))
    assert out.returncode == 2
    assert out.stderr.strip().endswith(
        f"series of 6 channel(s); {run.model_path} takes 12")
    assert "Traceback" not in out.stderr
    out = run_cli("predict", "--model", str(run.model_path), "a text")
    assert out.returncode == 2 and "labels numeric series" in out.stderr
    text_model = smoke_run[0] / "model.keras"
    out = run_cli("predict", "--model", str(text_model), "--file",
                  str(motions))
    assert out.returncode == 2 and "holds series" in out.stderr
    bad = tmp_path / "bad.ts"
    bad.write_text("@classLabel true a b\n@data\n1,2,x:a\n")
    out = run_cli("predict", "--model", str(run.model_path), "--file",
                  str(bad))
    assert out.returncode == 2
    assert f"{bad}:3: 'x' is not a number" in out.stderr


def test_series_settings_are_checked_like_the_others(tmp_path):
    with pytest.raises(ValueError, match="path=None: expected a path"):
        DataConfig(source="series")
    with pytest.raises(ValueError, match="test_path='t.ts': expected none "
                       "unless source='series'"):
        DataConfig(source="imdb", test_path="t.ts")
    with pytest.raises(ConfigError, match="data.normalize='zscore'"):
        apply_overrides(get_preset("basic_motions"),
                        {"data.normalize": "zscore"})
    out = run_cli("train", "--preset", "japanese_vowels", "--smoke",
                  "--set", "data.source=series", "--set",
                  f"data.path={tmp_path / 'gone.ts'}", "--workdir",
                  str(tmp_path / "run"))
    assert out.returncode == 2
    assert "gone.ts: No such file or directory" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
def test_compare_trains_every_cell_on_the_same_series(tmp_path):
    out = run_cli("compare", "--preset", "basic_motions", "--smoke",
                  "--cells", "gru,lstm", "--workdir", str(tmp_path),
                  timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "comparison.json").read_text())
    assert [row["cell"] for row in rows] == ["gru", "lstm"]
    chosen = [row for row in rows if row["chosen"]]
    assert len(chosen) == 1 and 0 <= chosen[0]["test_accuracy"] <= 1


@pytest.mark.slow
def test_a_keras_tuner_study_on_series_shares_one_prepared_copy(tmp_path):
    base = get_preset("basic_motions", smoke=True)
    spec = study_spec(base, {"model.cell": {"choice": ["gru", "lstm"]},
                             "data.normalize": {"choice": ["channel"]}},
                      backend="keras-tuner", algorithm="grid",
                      max_trials=2, max_epochs=1)
    lines = []
    best = run_study(tmp_path, spec, report=lines.append)
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert sorted(r["model.cell"] for r in rows) == ["gru", "lstm"]
    assert {r["status"] for r in rows} == {"completed"}
    assert not (tmp_path / "data_cache").exists()  # series: in memory
    model = keras.models.load_model(tmp_path / "best" / "model.keras")
    assert isinstance(model.input, dict)
    assert best["config"]["data"]["source"] == "basic_motions"


def test_many_classes_with_label_smoothing_train_and_resume(tmp_path):
    # Its loss (`SparseSmoothedCrossentropy`) is saved with the training
    # state: it must load back, as the best epoch's weights are restored.
    config = apply_overrides(get_preset("japanese_vowels", smoke=True), {
        "train.label_smoothing": 0.1, "train.epochs": 2})
    metrics = train_and_evaluate(config, tmp_path, report=lambda _: None)
    assert metrics.epochs_run == 2 and np.isfinite(metrics.test_loss)


def test_uneven_test_classes_get_a_balanced_accuracy(series_run):
    # JapaneseVowels' shipped test split holds 29 to 88 series a class.
    run, config, metrics = series_run
    splits = load_series_splits(config.data)
    model = keras.models.load_model(run.model_path)
    values, lengths = splits.test.series, splits.test.lengths
    padded = np.zeros((len(values), 29, 12), np.float32)
    for i, series in enumerate(values):
        padded[i, :len(series)] = series
    predicted = model.predict({"values": padded, "lengths": lengths},
                              verbose=0).argmax(axis=1)
    labels = splits.test.labels
    recalls = [np.mean(predicted[labels == c] == c)
               for c in np.unique(labels)]
    assert metrics.test_accuracy == pytest.approx(np.mean(predicted
                                                          == labels))
    assert metrics.test_balanced_accuracy == pytest.approx(np.mean(recalls))
