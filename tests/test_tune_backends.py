"""What both tuning backends do alike, written once and run on each:
every search algorithm, failed trials, kill -9 and resume.

Each study is checked twice: against its own results table and files,
then against the backend's own records (Keras Tuner's oracle, Ray's
experiment), reopened by the backend itself. Search and bookkeeping run
against `stand_in.fake_trial` (no training); one real study per
algorithm family runs in the slow tier.
"""

import json
import signal

import keras
import keras_tuner as kt
import numpy as np
import pytest
from commands import run_cli
from ray import cloudpickle

import rnntune  # noqa: F401  registers what exported models hold
from tuning.study.spec import load_runtime, load_spec
from tuning.trial.config import apply_overrides
from tuning.trial.history import read_history
from tuning.tune import run_study

import stand_in
from servers import check_hparams_on_server
from stand_in import fake_trial
from studies import TINY_SPACE, history_epochs, kill_and_resume, study_spec

# Ray's workers cannot import the tests' modules: the stand-in travels whole.
cloudpickle.register_pickle_by_value(stand_in)

BACKENDS = ["keras-tuner", "ray"]

# (backend, algorithm, trial function): every algorithm with the
# stand-in, and the real trial function for each family (sampling,
# model-based, bandit, population).
SEARCHES = [
    *(pytest.param("keras-tuner", a, fake_trial, id=f"keras-tuner-{a}")
      for a in ("random", "bayesian", "hyperband", "grid")),
    pytest.param("ray", "random", fake_trial, id="ray-random"),
    *(pytest.param("ray", a, fake_trial, id=f"ray-{a}",
                   marks=pytest.mark.slow)
      for a in ("grid", "tpe", "asha", "hyperband", "pbt")),
    *(pytest.param("keras-tuner", a, None, id=f"keras-tuner-{a}-real",
                   marks=pytest.mark.slow)
      for a in ("random", "bayesian", "hyperband")),
    *(pytest.param("ray", a, None, id=f"ray-{a}-real",
                   marks=pytest.mark.slow)
      for a in ("random", "tpe", "asha", "pbt")),
]

# Ray's grid is the full product of its choices: no float dimension.
GRID_SPACE = {"model.cell": {"choice": ["gru", "lstm"]},
              "model.units": {"choice": [4, 8]}}


@pytest.fixture(scope="module")
def base(smoke_config):
    return apply_overrides(smoke_config, {"train.early_stopping_patience": 0})


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from tuning.backends import ray_tune

    ray_tune._connect(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def backend(request):
    """The parametrized backend, with a local Ray running for `ray`."""
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return request.param


def _kt_project(workdir, objective="val_accuracy"):
    """The study as Keras Tuner itself reopens it."""
    return kt.RandomSearch(hypermodel=lambda hp: None,
                           objective=kt.Objective(objective, "max"),
                           directory=str(workdir / "keras_tuner"),
                           project_name="study", overwrite=False)


def _ray_results(workdir, trial_function=None):
    """The experiment as Ray itself reopens it."""
    from ray import tune

    from tuning.backends import ray_tune

    spec = load_spec(workdir)
    tuner = tune.Tuner.restore(
        str(workdir / "ray" / "study"),
        trainable=ray_tune.make_trainable(workdir, spec,
                                          load_runtime(workdir),
                                          trial_function=trial_function))
    return tuner.get_results()


def _study_epochs(backend, algorithm):
    # Hyperband's first Keras Tuner rung is 1 epoch with 3 (factor 3);
    # PBT restarts a Ray trial's actor at every exploit: two suffice.
    if backend == "keras-tuner":
        return 3 if algorithm == "hyperband" else 2
    return 2 if algorithm == "pbt" else 3


@pytest.mark.parametrize("backend, algorithm, trial_function", SEARCHES,
                         indirect=["backend"])
def test_tiny_search_with_every_algorithm(backend, algorithm, trial_function,
                                          base, tmp_path, capsys):
    space = GRID_SPACE if (backend, algorithm) == ("ray", "grid") else (
        TINY_SPACE)
    spec = study_spec(base, space, backend=backend, algorithm=algorithm,
                      max_trials=3,
                      max_epochs=_study_epochs(backend, algorithm))
    lines = []
    best = run_study(tmp_path, spec, report=lines.append,
                     trial_function=trial_function)
    out = "\n".join(lines)
    assert "3/3 done" in out and "top trials by val_accuracy" in out
    if trial_function is None:
        # The study vectorized its data once; the trials opened it.
        assert out.count("data cache: building") == 1
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert len(rows) == 3
    for row in rows:
        # Only a Ray scheduler stops a trial before its last epoch.
        if row["status"] != "completed":
            assert backend == "ray" and row["status"] == "stopped early"
            assert row["reason"].startswith(f"stopped by the {algorithm}")
        history = read_history(tmp_path / "trials" / row["trial_id"]
                               / "history.csv")
        assert row["epochs_run"] == len(history) <= spec.max_epochs
        assert row["best_epoch"] >= 1
        config = json.loads((tmp_path / "trials" / row["trial_id"]
                             / "config.json").read_text())["config"]
        assert config["model"]["bidirectional"] is (
            row.get("model.bidirectional") is True)
    assert (tmp_path / "best" / "model.keras").is_file()
    assert best["trial_id"] in {r["trial_id"] for r in rows}
    if trial_function is None:  # a real model, exported whole
        model = keras.models.load_model(tmp_path / "best" / "model.keras")
        assert model.predict(np.array(["a fine film"], dtype=object),
                             verbose=0).shape == (1, 1)
    if backend == "keras-tuner":
        _check_keras_tuner_records(tmp_path, rows, best, algorithm, capsys)
    else:
        _check_ray_records(tmp_path, rows, spec, space, algorithm,
                           trial_function)


def _check_keras_tuner_records(workdir, rows, best, algorithm, capsys):
    """The table agrees with Keras Tuner's own records, reopened by it;
    best/ holds the best trial's hyperparameters."""
    project = _kt_project(workdir)
    trials = project.oracle.trials
    assert sorted(trials) == sorted(r["trial_id"] for r in rows)
    for row in rows:
        trial = trials[row["trial_id"]]
        assert row["status"] == "completed"
        assert trial.status == "COMPLETED"
        assert trial.score == pytest.approx(row["best_objective"])
        hps = trial.hyperparameters
        for key in TINY_SPACE:
            if hps.is_active(key):
                assert hps.values[key] == row[key]
            else:  # the condition on model.cell does not hold
                assert key == "model.bidirectional" and row.get(key) is None
    capsys.readouterr()
    project.results_summary(1)
    assert "Showing 1 best trials" in capsys.readouterr().out
    top = max(rows, key=lambda r: r["best_objective"])
    assert best["trial_id"] == top["trial_id"]
    saved = json.loads((workdir / "best" / "hparams.json").read_text())
    assert saved["hyperparameters"] == {
        k: top[k] for k in TINY_SPACE if top.get(k) is not None}
    if algorithm == "hyperband":
        epochs = [r["epochs_run"] for r in rows]
        assert min(epochs) == 1  # Hyperband's first rung trains 1 epoch


def _check_ray_records(workdir, rows, spec, space, algorithm,
                       trial_function):
    """The table agrees with Ray's own records, reopened by it."""
    results = _ray_results(workdir, trial_function)
    assert results.num_errors == 0
    by_id = {r.metrics["trial_id"]: r for r in results}
    assert sorted(by_id) == sorted(r["trial_id"] for r in rows)
    for row in rows:
        result = by_id[row["trial_id"]]
        assert result.metrics["epoch"] == row["epochs_run"]
        assert result.metrics["best_objective"] == pytest.approx(
            row["best_objective"])
        if row["status"] == "completed":
            assert row["epochs_run"] == spec.max_epochs
        if algorithm == "pbt":  # PBT mutates the learning rate
            continue
        for key in space:
            if row.get(key) is None:  # inactive: its condition fails
                assert key == "model.bidirectional"
                assert row["model.cell"] != "lstm"
            else:
                assert result.config[key] == pytest.approx(row[key])
    if algorithm == "grid":
        points = {(r["model.cell"], r["model.units"]) for r in rows}
        assert len(points) == 3


def failure_space(csv_path, tmp_path):
    """A diverging learning rate and a missing data file, crossed."""
    return {
        "train.learning_rate": {"choice": [1e30, 0.01]},
        "data.path": {"choice": [str(csv_path), str(tmp_path / "gone.csv")]},
    }


@pytest.mark.parametrize("backend", [
    "keras-tuner", pytest.param("ray", marks=pytest.mark.slow)],
    indirect=True)
def test_failed_trials_are_recorded_and_the_study_goes_on(
        backend, smoke_config, reviews_csv, tmp_path, tensorboard):
    base = apply_overrides(smoke_config, {
        "data.source": "csv", "data.path": str(reviews_csv),
        "train.optimizer": "sgd", "train.early_stopping_patience": 0})
    space = failure_space(reviews_csv, tmp_path)
    spec = study_spec(base, space, backend=backend, algorithm="grid",
                      max_trials=4, max_consecutive_failures=4)
    run_study(tmp_path / "study", spec, report=lambda _: None,
              trial_function=fake_trial)
    rows = {(r["train.learning_rate"], r["data.path"]): r for r in
            json.loads((tmp_path / "study" / "trials.json").read_text())}
    good, gone = str(reviews_csv), str(tmp_path / "gone.csv")
    assert rows[(0.01, good)]["status"] == "completed"
    diverged = rows[(1e30, good)]
    assert diverged["status"] == "failed"
    assert diverged["reason"].startswith("diverged: loss is nan")
    for lr in (1e30, 0.01):
        assert rows[(lr, gone)]["status"] == "failed"
        assert rows[(lr, gone)]["reason"] == (
            f"DataError: {gone}: no such file")
    if backend == "keras-tuner":
        project = _kt_project(tmp_path / "study")
        statuses = sorted(t.status for t in project.oracle.trials.values())
        assert statuses == ["COMPLETED", "FAILED", "FAILED", "FAILED"]
    else:
        assert _ray_results(tmp_path / "study",
                            fake_trial).num_errors == 3
    check_hparams_on_server(tensorboard(tmp_path / "study"), keys=list(space),
                            expected={"STATUS_SUCCESS": 1,
                                      "STATUS_FAILURE": 3})


TINY_KEYS = ["model.cell", "model.units", "train.learning_rate"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_then_resume_loses_and_reruns_nothing(backend, tmp_path,
                                                     tensorboard):
    workdir = tmp_path / "study"
    args = ["--preset", "smoke", "--space", "tiny", "--backend", backend,
            "--algorithm", "random", "--max-trials", "3", "--max-epochs",
            "12", "--set", "train.early_stopping_patience=0", "--set",
            "data.max_examples=300"]
    if backend == "keras-tuner":
        # Killed in the second trial: while interrupted, TensorBoard shows
        # the finished trial and the interrupted one, whose status is not
        # known yet.
        def between():
            server = tensorboard(workdir)
            check_hparams_on_server(server, keys=TINY_KEYS, expected={
                "STATUS_SUCCESS": 1, "STATUS_UNKNOWN": 1})
            server.stop()

        before, finished_before, out, _ = kill_and_resume(
            workdir, args, victim_trial=1, min_epochs=3, between=between)
        assert list(finished_before) == [min(before)]
    else:
        before, finished_before, out, _ = kill_and_resume(
            workdir, args, victim_trial=0, min_epochs=3)
    rows = json.loads((workdir / "trials.json").read_text())
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows)
    after = history_epochs(workdir)
    assert sorted(after) == sorted(r["trial_id"] for r in rows)
    assert all(e == list(range(1, 13)) for e in after.values())
    for name, mtime in finished_before.items():  # not rerun
        assert (workdir / "trials" / name / "metrics.json"
                ).stat().st_mtime_ns == mtime
    interrupted = [n for n, e in before.items()
                   if n not in finished_before and len(e) >= 3]
    assert interrupted
    for name in interrupted:
        assert f"[trial {name}] resuming at epoch" in out
    if backend == "keras-tuner":
        victim = sorted(before)[1]
        line = next(text for text in out.splitlines()
                    if f"[trial {victim}] resuming at epoch" in text)
        start = int(line.split("resuming at epoch ")[1].split("/")[0])
        assert len(before[victim]) <= start <= len(before[victim]) + 1
        assert len(_kt_project(workdir).oracle.trials) == 3
        check_hparams_on_server(tensorboard(workdir), keys=TINY_KEYS,
                                expected={"STATUS_SUCCESS": 3})
    else:
        assert len(_ray_results(workdir)) == 3


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_says_interrupted_and_the_rerun_resumes(backend, tmp_path):
    # Ray takes the signal itself and returns from its run: the study must
    # still end as interrupted, not as finished.
    workdir = tmp_path / "study"
    args = ["--preset", "smoke", "--space", "tiny", "--backend", backend,
            "--algorithm", "random", "--max-trials", "2", "--max-epochs",
            "8", "--set", "train.early_stopping_patience=0", "--set",
            "data.max_examples=300"]
    *_, out, (returncode, stopped) = kill_and_resume(
        workdir, args, victim_trial=0, min_epochs=2, sig=signal.SIGINT)
    assert returncode == 130, stopped[-3000:]
    assert stopped.rstrip().endswith(
        "rnntune: interrupted; run the same command again to resume")
    assert "Traceback" not in stopped and "Tuner.restore" not in stopped
    assert "nothing to export" not in stopped
    rows = json.loads((workdir / "trials.json").read_text())
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    assert "best: trial" in out


@pytest.mark.slow
def test_ray_trials_train_on_data_shipped_through_the_object_store(
        local_ray, base, tmp_path):
    from tuning.study.spec import Runtime

    # Lengths below the base's: each trial's data is derived from the
    # shipped copy, and no trial writes an entry of its own to the cache.
    lengths = [base.data.sequence_length // 4, base.data.sequence_length // 2]
    spec = study_spec(base, {"data.sequence_length": {"choice": lengths}},
                      backend="ray", algorithm="grid", max_trials=2,
                      max_epochs=1)
    lines = []
    best = run_study(tmp_path, spec, report=lines.append,
                     runtime=Runtime(ship_data=True))
    out = "\n".join(lines)
    assert "shipping the study's data to its trials through Ray's" in out
    assert out.count("data: from the study's copy in Ray's object store") == 2
    assert load_runtime(tmp_path).ship_data
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert sorted(r["data.sequence_length"] for r in rows) == lengths
    assert {r["status"] for r in rows} == {"completed"}
    for row in rows:
        config = json.loads((tmp_path / "trials" / row["trial_id"]
                             / "config.json").read_text())
        assert config["config"]["data"]["sequence_length"] == (
            row["data.sequence_length"])
    # The study's own entry, and the chosen trial's, which the driver
    # scored on the test split: none of the trials' own.
    cached = {json.loads(p.read_text())["sequence_length"]
              for p in (tmp_path / "data_cache").glob("*/meta.json")}
    assert cached == {base.data.sequence_length,
                      best["config"]["data"]["sequence_length"]}


def test_shipped_data_larger_than_an_object_store_is_a_one_line_error(
        local_ray):
    from data_pipeline.cache import ShippedData
    from data_pipeline.pipeline import DataInfo, VectorizedSplits
    from tuning.backends import ray_tune
    from tuning.trial.config import ConfigError

    # 1.2 GB as NumPy counts it, without the memory.
    ids = np.broadcast_to(np.zeros((1, 1), np.uint16), (600_000, 1000))
    held = VectorizedSplits(
        vocabulary=("", "[UNK]"), max_tokens=2, ids={"train": ids},
        labels={"train": np.zeros(600_000, np.int32)},
        lengths={"train": np.zeros(600_000, np.int32)},
        info=DataInfo(class_names=("neg", "pos"), description="",
                      notes=(), stats={}, fingerprints={}))
    shipped = ShippedData(split_key=(), vectorized=held)
    with pytest.raises(ConfigError, match=r"--ship-data: the study's data "
                       r"needs 1,4\d\d MiB of Ray's object store on each "
                       r"node.*--object-store-memory="):
        ray_tune._check_object_stores(shipped)


@pytest.mark.slow
def test_a_ray_study_on_series_reads_them_in_each_trial(local_ray,
                                                         tmp_path):
    from launch.presets import get_preset
    from tuning.study.spec import Runtime
    from tuning.trial.config import ConfigError

    base = get_preset("japanese_vowels", smoke=True)
    space = {"model.cell": {"choice": ["gru", "lstm"]}}
    spec = study_spec(base, space, backend="ray", algorithm="grid",
                      max_trials=2, max_epochs=1)
    best = run_study(tmp_path / "study", spec, report=lambda _: None)
    rows = json.loads((tmp_path / "study" / "trials.json").read_text())
    assert {r["status"] for r in rows} == {"completed"}
    assert best["config"]["data"]["source"] == "japanese_vowels"
    assert (tmp_path / "study" / "best" / "model.keras").is_file()
    with pytest.raises(ConfigError, match="--ship-data: ships vectorized "
                       "text"):
        run_study(tmp_path / "shipped", spec, report=lambda _: None,
                  runtime=Runtime(ship_data=True))
    assert not (tmp_path / "shipped").exists()  # refused before writing


@pytest.mark.slow
def test_a_ray_study_schedules_a_regression_on_validation_mae(local_ray,
                                                              tmp_path):
    # ASHA reads `val_mae` from each epoch's report.
    from data_pipeline.series import embedded_series
    from launch.presets import get_preset

    base = get_preset("tecator", smoke=True)
    space = {"model.cell": {"choice": ["gru", "lstm"]}}
    spec = study_spec(base, space, backend="ray", algorithm="asha",
                      max_trials=2, max_epochs=2, objective="val_mae",
                      ensemble=2)
    best = run_study(tmp_path, spec, report=lambda _: None)
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert {r["status"] for r in rows} <= {"completed", "stopped early"}
    assert all(r["best_objective"] == r["best_val_mae"] for r in rows)
    assert best["test_rmse"] > 0
    assert (tmp_path / "best" / "model.keras").is_file()
    # The ensemble of a regression averages values; predict prints them.
    members = json.loads((tmp_path / "best" / "ensemble" / "members.json")
                         .read_text())
    assert members["objective"] == "val_mae"
    assert members["chosen"] == (best.get("chosen_model") == "ensemble")
    _, test_file = embedded_series("tecator")
    out = run_cli("predict", "--model", str(tmp_path / "best" / "ensemble"
                                            / "model.keras"),
                  "--file", str(test_file))
    assert out.returncode == 0, out.stderr[-2000:]
    values = [float(line.split("\t")[0])
              for line in out.stdout.strip().splitlines()]
    assert len(values) == 43
