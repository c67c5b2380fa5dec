"""The one trial function: outputs, TensorBoard, export, resume, strategy."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator)

from data_pipeline.sources import load_splits
from tuning.trial.config import WorkdirError, apply_overrides
from tuning.trial.history import read_history
from tuning.trial.run import RunDir
from tuning.trial.train import train_and_evaluate

from commands import REPO, SMALL, run_cli
from polling import wait_until


def _scalars(logdir, tag):
    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    events.Reload()
    return {e.step: float(tf.make_ndarray(e.tensor_proto))
            for e in events.Tensors(tag)}


def test_run_writes_every_output(smoke_run, smoke_config):
    workdir, metrics = smoke_run
    for name in ("config.json", "vocabulary.txt", "labels.txt",
                 "history.csv", "metrics.json", "model.keras"):
        assert (workdir / name).is_file(), name
    assert not (workdir / "backup").exists()
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["config"] == smoke_config.to_dict()
    assert saved["runtime"]["replicas"] == 1
    assert saved["runtime"]["global_batch_size"] == 32
    assert saved["runtime"]["precision"] == "float32"
    assert [(c["layer"], c["cudnn"]) for c in saved["runtime"]["cudnn"]] == [
        ("gru_0", True)]
    assert saved["runtime"]["examples"] == {"train": 288, "validation": 72,
                                            "test": 40}
    vocabulary = (workdir / "vocabulary.txt").read_text().splitlines()
    assert vocabulary[:2] == ["", "[UNK]"]
    assert len(vocabulary) == saved["runtime"]["vocabulary_size"] == (
        smoke_config.data.max_tokens)  # 400 reviews hold more words
    assert (workdir / "labels.txt").read_text().split() == ["neg", "pos"]
    assert RunDir(workdir).read_metrics() == metrics


def test_metrics_agree_with_history(smoke_run):
    workdir, metrics = smoke_run
    rows = read_history(workdir / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    best = max(rows, key=lambda r: r["val_accuracy"])
    assert metrics.best_epoch == best["epoch"]
    assert metrics.best_val_accuracy == best["val_accuracy"]
    assert metrics.final_train_accuracy == rows[-1]["accuracy"]
    assert metrics.final_accuracy_gap == pytest.approx(
        rows[-1]["accuracy"] - rows[-1]["val_accuracy"])
    assert metrics.epochs_run == 2
    assert metrics.stopped_early is False
    assert metrics.status == "completed"
    assert 0 <= metrics.test_accuracy <= 1
    assert metrics.verdict in ("overfitting", "underfitting", "healthy")
    assert metrics.wall_seconds > 0


def test_tensorboard_logs_overlay_train_validation_and_gap(smoke_run):
    workdir, _ = smoke_run
    rows = read_history(workdir / "history.csv")
    for run, key in (("train", "accuracy"), ("validation", "val_accuracy")):
        values = _scalars(workdir / "logs" / run, "epoch_accuracy")
        assert sorted(values) == [0, 1]
        np.testing.assert_allclose([values[0], values[1]],
                                   [r[key] for r in rows], rtol=1e-6)
        assert sorted(_scalars(workdir / "logs" / run, "epoch_loss")) == [
            0, 1]
    gap = _scalars(workdir / "logs" / "gap", "epoch_accuracy_gap")
    np.testing.assert_allclose([gap[0], gap[1]],
                               [r["accuracy_gap"] for r in rows], rtol=1e-5)


def test_exported_model_loads_in_a_fresh_process(smoke_run, tmp_path):
    """Raw strings in; plain load_model; same predictions as training."""
    workdir, metrics = smoke_run
    script = textwrap.dedent(f"""
        import json, numpy as np, keras
        import rnntune  # registers what exported models hold
        from data_pipeline.config import DataConfig
        from data_pipeline.sources import load_splits
        from data_pipeline.pipeline import vectorize
        config = json.load(open({str(workdir / 'config.json')!r}))["config"]
        test = load_splits(DataConfig(**config["data"])).test
        model = keras.models.load_model({str(workdir / 'model.keras')!r})
        raw = model.predict(test.texts, verbose=0)[:, 0]
        vectorizer = model.get_layer("vectorizer")
        inner = model.layers[-1]
        ids = inner.predict(vectorize(test.texts, vectorizer), verbose=0)
        np.testing.assert_allclose(raw, ids[:, 0], rtol=1e-5)
        accuracy = float(np.mean((raw > 0.5) == (test.labels == 1)))
        print(json.dumps({{"accuracy": accuracy}}))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    accuracy = json.loads(out.stdout.strip().splitlines()[-1])["accuracy"]
    assert accuracy == pytest.approx(metrics.test_accuracy, abs=1e-6)


def test_finished_run_is_reused_and_other_config_refused(smoke_run,
                                                         smoke_config):
    workdir, metrics = smoke_run
    lines = []
    assert train_and_evaluate(smoke_config, workdir,
                              report=lines.append) == metrics
    assert "already finished" in lines[0]
    other = apply_overrides(smoke_config, {"model.units": 9})
    with pytest.raises(WorkdirError, match=r"model.units: 16 -> 9"):
        train_and_evaluate(other, workdir, report=lines.append)


def test_early_stopping_records_best_and_stop_epoch(smoke_config, tmp_path):
    # A learning rate this small leaves validation accuracy unchanged, so
    # epoch 1 stays best and patience 2 stops at epoch 3.
    config = apply_overrides(smoke_config, {
        "train.learning_rate": 1e-12, "train.epochs": 8,
        "train.early_stopping_patience": 2})
    metrics = train_and_evaluate(config, tmp_path, report=lambda _: None)
    assert metrics.stopped_early is True
    assert metrics.epochs_run == 3
    assert metrics.best_epoch == 1
    assert len(read_history(tmp_path / "history.csv")) == 3


def test_patience_spent_at_the_last_epoch_is_no_early_stop(smoke_config,
                                                           tmp_path):
    config = apply_overrides(smoke_config, {
        "train.learning_rate": 1e-12, "train.epochs": 3,
        "train.early_stopping_patience": 2})
    metrics = train_and_evaluate(config, tmp_path, report=lambda _: None)
    assert (metrics.epochs_run, metrics.best_epoch) == (3, 1)
    assert metrics.stopped_early is False


def test_a_small_corpus_gets_the_epochs_min_examples_seen_asks(
        smoke_config, tmp_path):
    # commands.SMALL: 400 texts, 288 of them for training, 2 epochs; 700
    # examples' worth takes 3.
    config = apply_overrides(smoke_config, {"train.min_examples_seen": 700})
    lines = []
    metrics = train_and_evaluate(config, tmp_path, report=lines.append)
    assert ("train.min_examples_seen=700: 288 training texts, so up to 3 "
            "epochs rather than 2") in lines
    assert metrics.epochs_run == 3
    assert len(read_history(tmp_path / "history.csv")) == 3
    # The run records the config as given, and is reused by it.
    recorded = json.loads((tmp_path / "config.json").read_text())["config"]
    assert recorded["train"]["epochs"] == 2
    assert recorded["train"]["min_examples_seen"] == 700
    lines.clear()
    assert train_and_evaluate(config, tmp_path, report=lines.append
                              ).epochs_run == 3
    assert lines == [f"{tmp_path}: already finished, reusing its metrics"]


def test_a_diverging_run_is_recorded_and_exports_nothing(smoke_config,
                                                         tmp_path):
    config = apply_overrides(smoke_config, {
        "train.optimizer": "sgd", "train.learning_rate": 1e30,
        "train.epochs": 3})
    metrics = train_and_evaluate(config, tmp_path, report=lambda _: None)
    assert metrics.status == metrics.verdict == "diverged"
    assert metrics.verdict_reason.startswith("loss is nan at epoch 1")
    assert metrics.epochs_run == 1  # TerminateOnNaN ends it there
    assert not (tmp_path / "model.keras").exists()
    assert (tmp_path / "metrics.json").exists()


def test_mirrored_strategy_over_two_cpu_devices(smoke_config, tmp_path,
                                                two_replicas):
    assert len(tf.config.list_logical_devices("CPU")) == 2
    strategy = two_replicas
    metrics = train_and_evaluate(smoke_config, tmp_path, strategy=strategy,
                                 report=lambda _: None)
    runtime = json.loads((tmp_path / "config.json").read_text())["runtime"]
    assert runtime["replicas"] == 2
    assert runtime["per_replica_batch_size"] == 32
    assert runtime["global_batch_size"] == 64
    # Bucketed batches (the smoke preset's) split over the two replicas.
    assert smoke_config.data.bucket_by_length and runtime["bucket_bounds"]
    assert metrics.status == "completed"
    assert (tmp_path / "model.keras").is_file()


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    workdir = tmp_path / "run"
    args = ["train", "--preset", "smoke", *SMALL,
            "--set", "train.epochs=40",
            "--set", "train.early_stopping_patience=0",
            "--workdir", str(workdir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen([sys.executable, "-m", "launch", *args],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def three_epochs():
        if len(read_history(workdir / "history.csv")) >= 3:
            return True
        assert process.poll() is None, "training ended before the kill"
        return False

    try:
        wait_until(three_epochs, timeout=240, interval=0.02,
                   what="the run's third epoch")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    done = len(read_history(workdir / "history.csv"))
    assert done < 40 and (workdir / "backup").exists()
    assert not (workdir / "metrics.json").exists()

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    first = resumed.stdout.splitlines()[0]
    assert first.startswith("resuming at epoch ")
    start = int(first.split()[3].split("/")[0])
    assert done <= start <= done + 1  # the backup may lag a row by one
    assert f"epoch {start}/40 " in resumed.stdout
    assert f"epoch {start - 1}/40 " not in resumed.stdout
    rows = read_history(workdir / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(1, 41))
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 40


def _partial_writes(workdir):
    """Whether a checkpoint, best-weights or model write is under way."""
    return (workdir / "backup.new").exists() or any(
        workdir.glob(".partial.*"))


@pytest.mark.slow
def test_a_run_killed_at_random_moments_always_resumes(tmp_path):
    """Kill -9 at 24 moments, half of them while a checkpoint, the best
    weights or the model is being written; every rerun resumes, and the
    run ends with each epoch once and a model that loads."""
    import random

    import keras

    import rnntune  # noqa: F401  registers what exported models hold

    rng = random.Random(9)
    workdir = tmp_path / "run"
    epochs = 6
    args = ["train", "--preset", "smoke", "--set", "data.max_examples=200",
            "--set", f"train.epochs={epochs}",
            "--set", "train.early_stopping_patience=0",
            "--workdir", str(workdir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    kills, during_writes, finished = 0, 0, 0
    while kills < 24:
        process = subprocess.Popen(
            [sys.executable, "-m", "launch", *args], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            at_write, seen_write = kills % 2 == 1, False
            delay = rng.uniform(3, 9)  # start-up takes some of it
            started = time.monotonic()
            while process.poll() is None and time.monotonic() < deadline:
                if at_write and _partial_writes(workdir):
                    seen_write = True
                    time.sleep(rng.uniform(0, 0.02))
                    break
                if not at_write and time.monotonic() - started > delay:
                    break
                time.sleep(0.001)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                kills += 1
                during_writes += seen_write
                continue
        finally:
            if process.poll() is None:
                process.kill()
        # It finished before the kill: it must have finished well.
        assert process.returncode == 0, process.stderr.read()[-3000:]
        finished += 1
        assert json.loads((workdir / "metrics.json").read_text())[
            "epochs_run"] == epochs
        shutil.rmtree(workdir)  # and start over, to kill more moments
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_history(workdir / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["epochs_run"] == epochs
    assert not list(workdir.glob("backup*")) and not list(
        workdir.glob(".partial.*"))
    model = keras.models.load_model(workdir / "model.keras")
    probs = model.predict(np.asarray(["a fine film"], dtype=object),
                          verbose=0)
    assert probs.shape == (1, 1) and 0 <= probs[0, 0] <= 1
    assert during_writes >= 12


def test_what_reading_skipped_is_said_and_recorded(smoke_config, tmp_path):
    from data_files import make_class_tree

    root = make_class_tree(tmp_path / "texts", {"pos": 12, "neg": 12})
    (root / "neg" / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / ".DS_Store").write_bytes(b"\x00")
    config = apply_overrides(smoke_config, {
        "data.source": "directory", "data.path": str(root),
        "data.max_examples": 0, "data.decode_errors": "skip",
        "train.epochs": 1})
    lines = []
    train_and_evaluate(config, tmp_path / "run", report=lines.append)
    assert lines[0].startswith("data cache: building ")
    assert lines[1:3] == [
        "data: ignored 1 hidden file(s) or folder(s): texts/.DS_Store",
        "data: data.decode_errors=skip: skipped 1 file(s) that are not "
        "UTF-8: latin.txt"]
    runtime = json.loads((tmp_path / "run" / "config.json").read_text())[
        "runtime"]
    assert runtime["data_reading"] == {"decode_errors": "skip",
                                       "hidden_ignored": 1, "skipped": 1}
    assert sum(runtime["examples"].values()) == 24


def test_texts_with_no_words_train_evaluate_and_predict(smoke_config,
                                                        reviews_csv,
                                                        tmp_path):
    """A text of only punctuation or `<br />` is one [UNK] token, never an
    all-padding row (which a masked cuDNN layer refuses)."""
    import csv

    import keras

    with open(reviews_csv, newline="") as f:
        rows = list(csv.reader(f))[1:121]
    rows += [["...", "0"], ["<br /><br />", "1"], ["!!!", "0"]] * 10
    path = tmp_path / "odd.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["text", "label"], *rows])
    config = apply_overrides(smoke_config, {
        "data.source": "csv", "data.path": str(path),
        "data.max_examples": 0, "train.epochs": 1})
    from data_pipeline.pipeline import VectorizedSplits
    from data_pipeline.sources import load_splits

    vectorized = VectorizedSplits.build(
        load_splits(config.data), max_tokens=config.data.max_tokens,
        sequence_length=config.data.sequence_length)
    for ids in vectorized.ids.values():
        assert (ids.max(axis=1) > 0).all()
    metrics = train_and_evaluate(config, tmp_path / "run",
                                 vectorized=vectorized,
                                 report=lambda _: None)
    assert metrics.status == "completed"
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    probs = model.predict(np.asarray(["...", "<br />", "", "fine"],
                                     dtype=object), verbose=0)
    assert probs.shape == (4, 1) and np.isfinite(probs).all()


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_the_output_in_float32(precision,
                                                     smoke_config,
                                                     tmp_path):
    import keras

    config = apply_overrides(smoke_config, {
        "train.precision": precision, "train.epochs": 1,
        "data.max_examples": 200})
    lines = []
    metrics = train_and_evaluate(config, tmp_path, report=lines.append)
    assert metrics.status == "completed"
    warned = [line for line in lines if "emulates float16" in line]
    assert len(warned) == (precision == "mixed_float16")  # no GPU here
    runtime = json.loads((tmp_path / "config.json").read_text())["runtime"]
    assert runtime["precision"] == precision
    model = keras.models.load_model(tmp_path / "model.keras")
    inner = model.layers[-1]
    assert inner.get_layer("gru_0").dtype_policy.name == precision
    assert inner.get_layer("output").dtype_policy.name == "float32"
    probs = model.predict(np.asarray(["a fine film"], dtype=object),
                          verbose=0)
    assert probs.dtype == np.float32
    assert keras.mixed_precision.dtype_policy().name == "float32"


def test_a_run_and_a_study_score_a_model_alike(smoke_config, tmp_path):
    """With label smoothing on, the test figures a run records at its end
    (its training model on the batched ids) and those a study or a
    comparison records for its chosen model (the exported model on raw
    texts) are the same numbers: one loss, one threshold."""
    config = apply_overrides(smoke_config, {
        "train.label_smoothing": 0.2, "train.epochs": 3,
        "train.learning_rate": 0.02})
    own = train_and_evaluate(config, tmp_path, report=lambda _: None)
    assert own.tested
    run = RunDir(tmp_path)
    run.write_metrics(own.replace(test_loss=math.nan,
                                  test_accuracy=math.nan))
    chosen = train_and_evaluate(config, tmp_path, report=lambda _: None)
    assert chosen.test_loss == pytest.approx(own.test_loss, abs=1e-5)
    assert chosen.test_accuracy == pytest.approx(own.test_accuracy,
                                                 abs=1e-6)
    assert run.read_metrics() == chosen
    # The loss is the smoothed cross-entropy of the model's predictions,
    # and the accuracy thresholds them above 0.5.
    test = load_splits(config.data).test
    p = keras.models.load_model(run.model_path).predict(
        np.asarray(test.texts, dtype=object), verbose=0)[:, 0]
    assert p.std() > 0.02  # a model that tells texts apart
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    y = test.labels * 0.8 + 0.1
    smoothed = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert own.test_loss == pytest.approx(smoothed, abs=1e-4)
    plain = -np.mean(np.where(test.labels == 1, np.log(p), np.log(1 - p)))
    assert abs(plain - own.test_loss) > 1e-3
    assert own.test_accuracy == pytest.approx(
        np.mean((p > 0.5) == (test.labels == 1)), abs=1e-6)
