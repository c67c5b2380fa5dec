"""Ray Tune backend: every searcher and scheduler, failures, resume.

Search and bookkeeping run against `helpers.fake_trial` (no training);
one real study per algorithm family runs in the slow tier.
"""

import json

import pytest
import ray
from ray import cloudpickle, tune

import helpers

from tuning.backends import ray_tune
from tuning.trial.config import apply_overrides
from tuning.study.spec import load_runtime, load_spec
from tuning.trial.history import read_history
from tuning.tune import run_study

from helpers import (TINY_SPACE, check_hparams_on_server, failure_space,
                     fake_trial, kill_and_resume, study_spec)

# Ray's workers cannot import the tests' modules: the stand-in travels whole.
cloudpickle.register_pickle_by_value(helpers)

SEARCHES = [
    *(pytest.param(a, fake_trial, id=a)
      for a in ("random", "grid", "tpe", "asha", "hyperband", "pbt")),
    *(pytest.param(a, None, id=f"{a}-real", marks=pytest.mark.slow)
      for a in ("random", "tpe", "asha", "pbt")),
]

GRID_SPACE = {"model.cell": {"choice": ["gru", "lstm"]},
              "model.units": {"choice": [4, 8]}}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray_tune._connect(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def base(smoke_config):
    return apply_overrides(smoke_config, {"train.early_stopping_patience": 0})


def _results(workdir, trial_function=None):
    """The experiment as Ray itself reopens it."""
    spec = load_spec(workdir)
    tuner = tune.Tuner.restore(
        str(workdir / "ray" / "study"),
        trainable=ray_tune.make_trainable(workdir, spec,
                                          load_runtime(workdir),
                                          trial_function=trial_function))
    return tuner.get_results()


@pytest.mark.parametrize("algorithm, trial_function", SEARCHES)
def test_tiny_search_with_every_algorithm(algorithm, trial_function, base,
                                          tmp_path):
    space = GRID_SPACE if algorithm == "grid" else TINY_SPACE
    # PBT restarts a trial's actor at every exploit: two epochs suffice.
    epochs = 2 if algorithm == "pbt" else 3
    spec = study_spec(base, space, backend="ray", algorithm=algorithm,
                      max_trials=3, max_epochs=epochs)
    lines = []
    best = run_study(tmp_path, spec, report=lines.append,
                     trial_function=trial_function)
    assert any("3/3 done" in line for line in lines)
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert len(rows) == 3
    assert all(r["status"] in ("completed", "stopped early") for r in rows)
    results = _results(tmp_path, trial_function)
    assert results.num_errors == 0
    by_id = {r.metrics["trial_id"]: r for r in results}
    assert sorted(by_id) == sorted(r["trial_id"] for r in rows)
    for row in rows:
        result = by_id[row["trial_id"]]
        assert result.metrics["epoch"] == row["epochs_run"]
        assert result.metrics["best_objective"] == pytest.approx(
            row["best_objective"])
        history = read_history(tmp_path / "trials" / row["trial_id"]
                               / "history.csv")
        assert len(history) == row["epochs_run"] <= epochs
        if row["status"] == "completed":
            assert row["epochs_run"] == epochs
        else:
            assert row["reason"].startswith(f"stopped by the {algorithm}")
        config = json.loads((tmp_path / "trials" / row["trial_id"]
                             / "config.json").read_text())["config"]
        assert config["model"]["bidirectional"] is (
            row.get("model.bidirectional") is True)
        if algorithm == "pbt":  # PBT mutates the learning rate
            continue
        for key in space:
            if row.get(key) is None:  # inactive: its condition fails
                assert key == "model.bidirectional"
                assert row["model.cell"] != "lstm"
            else:
                assert result.config[key] == pytest.approx(row[key])
    assert (tmp_path / "best" / "model.keras").is_file()
    assert best["trial_id"] in by_id
    if algorithm == "grid":
        points = {(r["model.cell"], r["model.units"]) for r in rows}
        assert len(points) == 3


def test_failed_trials_are_recorded_and_the_study_goes_on(
        smoke_config, reviews_csv, tmp_path):
    base = apply_overrides(smoke_config, {
        "data.source": "csv", "data.path": str(reviews_csv),
        "train.optimizer": "sgd", "train.early_stopping_patience": 0})
    space = failure_space(reviews_csv, tmp_path)
    spec = study_spec(base, space, backend="ray", algorithm="grid",
                      max_trials=4, max_consecutive_failures=4)
    run_study(tmp_path / "study", spec, report=lambda _: None,
              trial_function=fake_trial)
    rows = {(r["train.learning_rate"], r["data.path"]): r for r in
            json.loads((tmp_path / "study" / "trials.json").read_text())}
    good, gone = str(reviews_csv), str(tmp_path / "gone.csv")
    assert rows[(0.01, good)]["status"] == "completed"
    assert rows[(1e30, good)]["status"] == "failed"
    assert "diverged: loss is nan" in rows[(1e30, good)]["reason"]
    for lr in (1e30, 0.01):
        assert rows[(lr, gone)]["status"] == "failed"
        assert f"DataError: {gone}: no such file" in rows[(lr, gone)][
            "reason"]
    assert _results(tmp_path / "study", fake_trial).num_errors == 3
    check_hparams_on_server(tmp_path / "study", keys=list(space), expected={
        "STATUS_SUCCESS": 1, "STATUS_FAILURE": 3})


@pytest.mark.slow
def test_kill_9_then_resume_loses_and_reruns_nothing(tmp_path):
    workdir = tmp_path / "study"
    args = ["--preset", "smoke", "--space", "tiny", "--backend", "ray",
            "--algorithm", "random", "--max-trials", "3", "--max-epochs",
            "12", "--set", "train.early_stopping_patience=0", "--set",
            "data.max_examples=300"]
    before, finished_before, out = kill_and_resume(
        workdir, args, victim_trial=0, min_epochs=3)
    rows = json.loads((workdir / "trials.json").read_text())
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows)
    after = {d.name: [r["epoch"] for r in read_history(d / "history.csv")]
             for d in (workdir / "trials").iterdir()}
    assert all(e == list(range(1, 13)) for e in after.values())
    for name, mtime in finished_before.items():
        assert (workdir / "trials" / name / "metrics.json"
                ).stat().st_mtime_ns == mtime
    interrupted = [n for n, e in before.items()
                   if n not in finished_before and len(e) >= 3]
    assert interrupted
    for name in interrupted:
        assert f"[trial {name}] resuming at epoch" in out
    assert len(_results(workdir)) == 3
