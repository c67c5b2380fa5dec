"""A run's contract: `RunMetrics`, the run's and study's files, statuses
and the one ranking (plain Python: no TensorFlow)."""

import dataclasses
import json
import math
import pathlib
import re

import pytest

from tuning.trial.run import (SUMMARY_FIELDS, RunDir, RunMetrics, Status,
                              StudyDir, status_of)
from tuning.trial.verdict import best_first

from commands import REPO

ROWS = [
    {"epoch": 1, "loss": 0.7, "accuracy": 0.6, "val_loss": 0.65,
     "val_accuracy": 0.62, "accuracy_gap": -0.02, "loss_gap": -0.05,
     "seconds": 2.0},
    {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6,
     "val_accuracy": 0.7, "accuracy_gap": 0.1, "loss_gap": 0.1,
     "seconds": 4.0},
]


def test_metrics_round_trip_through_the_run_directory(tmp_path):
    metrics = RunMetrics.from_history(ROWS, objective="val_accuracy",
                                      num_classes=2, stopped_early=False,
                                      parameters=123)
    assert (metrics.best_epoch, metrics.best_val_accuracy) == (2, 0.7)
    assert metrics.seconds_per_epoch == 3.0
    assert metrics.verdict == "overfitting" and not metrics.tested
    run = RunDir(tmp_path)
    assert run.read_metrics() is None  # not finished
    run.write_metrics(metrics)
    assert run.read_metrics() == metrics  # NaN test figures included
    on_disk = json.loads(run.metrics_path.read_text())
    assert set(on_disk) == {f.name for f in dataclasses.fields(RunMetrics)}


def test_metrics_of_another_version_still_read(tmp_path):
    run = RunDir(tmp_path)
    run.metrics_path.write_text(json.dumps(
        {"status": "completed", "objective": "val_loss",
         "best_objective": 0.4, "test_accuracy": None, "retired_key": 1}))
    metrics = run.read_metrics()
    assert metrics.best_objective == 0.4
    assert math.isnan(metrics.test_accuracy) and not metrics.tested


def test_status_of_a_finished_run():
    base = RunMetrics(status="completed", objective="val_accuracy")
    assert status_of(base) == (Status.COMPLETED, "")
    assert status_of(base.replace(stopped_early=True)) == (
        Status.STOPPED_EARLY, "early stopping")
    assert status_of(base.replace(status="diverged",
                                  verdict_reason="loss is nan")) == (
        Status.FAILED, "diverged: loss is nan")
    assert Status.STOPPED_EARLY == "stopped early"  # the table's word


def test_summary_holds_the_tables_fields():
    metrics = RunMetrics(status="completed", objective="val_loss",
                         epochs_run=3)
    summary = metrics.summary()
    assert set(summary) == {*SUMMARY_FIELDS, "stopped_epoch"}
    assert summary["stopped_epoch"] == 3


@pytest.mark.parametrize("objective, expected", [
    ("val_accuracy", ["b", "a", "c"]), ("val_loss", ["c", "a", "b"])])
def test_one_ranking_for_either_direction(objective, expected):
    items = [("a", 0.5), ("b", 0.9), ("n", math.nan), ("c", 0.1),
             ("x", None)]
    ranked = best_first(items, objective, lambda item: item[1])
    assert [name for name, _ in ranked] == expected


def test_ties_keep_their_order():
    items = [("first", 0.5), ("second", 0.5)]
    assert best_first(items, "val_loss", lambda i: i[1]) == items


def test_a_study_names_its_trials_and_best(tmp_path):
    study = StudyDir(tmp_path)
    assert study.trial("0007").path == tmp_path / "trials" / "0007"
    assert study.best.model_path == tmp_path / "best" / "model.keras"
    for trial_id in ("b", "a"):
        study.trial(trial_id).path.mkdir(parents=True)
    assert [run.name for run in study.trials()] == ["a", "b"]


def test_only_the_contract_spells_a_run_files_name():
    """No product module but `tuning/trial/run.py` spells the run's and
    the study's file names (comments and docstrings aside)."""
    names = ("config.json", "metrics.json", "model.keras", "history.csv",
             "trials.json", "trials.csv", "study.json", "row.json",
             "runtime.json", "provenance.json", "labels.txt")
    pattern = re.compile("|".join(
        rf"""["']{re.escape(name)}["']""" for name in names))
    offenders = []
    for package in ("tuning", "launch", "models", "data_pipeline"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "tuning" / "trial" / "run.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                if pattern.search(code):
                    offenders.append(
                        f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    assert pathlib.Path(REPO / "tuning" / "trial" / "run.py").exists()
