"""Keras Tuner backend: consecutive failures, early stopping, Hyperband's
continued trials, seeds, the `tune` command.

What it shares with the Ray backend (every algorithm, failed trials,
kill -9 and resume) is in test_tune_backends.py. Search and bookkeeping
run against `stand_in.fake_trial` (no training); real studies run in the
slow tier.
"""

import json
import random

import keras_tuner as kt
import pytest

import rnntune  # noqa: F401  registers what exported models hold
from tuning.trial.config import apply_overrides
from tuning.study.spec import StudyFailed
from tuning.tune import run_study
from tuning.trial.history import read_history

from stand_in import fake_trial
from studies import TINY_SPACE, study_spec


@pytest.fixture(scope="module")
def base(smoke_config):
    return apply_overrides(smoke_config, {"train.epochs": 2})


def _kt_project(workdir, objective="val_accuracy"):
    return kt.RandomSearch(hypermodel=lambda hp: None,
                           objective=kt.Objective(objective, "max"),
                           directory=str(workdir / "keras_tuner"),
                           project_name="study", overwrite=False)


def test_consecutive_failures_stop_the_study(smoke_config, tmp_path):
    space = {"data.path": {"choice": [str(tmp_path / "a.csv"),
                                      str(tmp_path / "b.csv"),
                                      str(tmp_path / "c.csv")]}}
    base = apply_overrides(smoke_config, {"data.source": "csv",
                                          "data.path": str(tmp_path / "a.csv")})
    (tmp_path / "a.csv").write_text("text,label\n" + "".join(
        f"t{i},{i % 2}\n" for i in range(40)))
    space["data.path"]["choice"][0] = str(tmp_path / "missing.csv")
    spec = study_spec(base, space, backend="keras-tuner", algorithm="grid",
                      max_trials=3, max_consecutive_failures=2)
    with pytest.raises(StudyFailed, match="consecutive failures exceeded"):
        run_study(tmp_path / "study", spec, trial_function=fake_trial)
    rows = json.loads((tmp_path / "study" / "trials.json").read_text())
    assert [r["status"] for r in rows] == ["failed", "failed"]


def test_in_trial_early_stopping_records_best_and_stop_epochs(base,
                                                              tmp_path):
    # The stand-in's validation accuracy peaks at epoch 2 with these
    # rates (stand_in.fake_curve): patience 1 stops each trial after 3.
    space = {"train.learning_rate": {"choice": [0.05, 0.1]}}
    spec = study_spec(apply_overrides(base, {
        "train.early_stopping_patience": 1}), space, backend="keras-tuner",
        algorithm="grid", max_trials=2, max_epochs=6)
    run_study(tmp_path, spec, report=lambda _: None,
              trial_function=fake_trial)
    rows = json.loads((tmp_path / "trials.json").read_text())
    for row in rows:
        assert (row["status"], row["reason"]) == ("stopped early",
                                                  "early stopping")
        assert (row["best_epoch"], row["stopped_epoch"]) == (2, 3)


@pytest.mark.slow
def test_tune_command_shows_progress_and_exports_a_predicting_model(
        tmp_path, capsys):
    from launch.cli import main

    workdir = tmp_path / "study"
    code = main(["tune", "--preset", "smoke", "--set",
                 "data.max_examples=300", "--space", "tiny", "--backend",
                 "keras-tuner", "--algorithm", "random", "--max-trials", "2",
                 "--max-epochs", "1", "--retrain-best", "--workdir",
                 str(workdir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "[trial 0: started] 0/2 done, no best yet, elapsed" in out
    assert "2/2 done, best val_accuracy" in out
    assert "top trials by val_accuracy:" in out
    info = json.loads((workdir / "best" / "hparams.json").read_text())
    assert info["retrained_on_train_and_validation"] is True
    assert not (workdir / "best.tmp").exists()  # staged, then moved
    assert info["retrain_metrics"]["epochs_run"] == 1
    # No figure read from the validation split it trained on.
    assert not [k for k in info["retrain_metrics"] if "val" in k
                or k.startswith(("best_", "verdict"))]
    assert "retraining trial " in out and "its validation figures are on " \
        "examples it trains on" in out
    code = main(["predict", "--model", str(workdir / "best" / "model.keras"),
                 "What a wonderful film"])
    label, prob, _ = capsys.readouterr().out.strip().split("\t")
    assert code == 0 and label in ("neg", "pos") and float(prob) >= 0.5


@pytest.mark.parametrize("args, expected", [
    (["--preset", "smoke", "--space", "nope", "--backend", "ray",
      "--algorithm", "random", "--max-trials", "2"], "unknown space 'nope'"),
    (["--preset", "smoke", "--space", "tiny", "--backend", "keras-tuner",
      "--algorithm", "tpe", "--max-trials", "2"],
     "algorithm 'tpe' is not one of the keras-tuner backend's"),
    (["--preset", "smoke", "--space", "tiny", "--backend", "ray",
      "--algorithm", "random", "--max-trials", "0"], "max_trials=0"),
    (["--preset", "smoke", "--space", "tiny"],
     "tune needs --backend, --algorithm, --max-trials"),
    (["--resume"], "no study to resume"),
    (["--preset", "smoke", "--space", "tiny", "--backend", "keras-tuner",
      "--algorithm", "random", "--max-trials", "2", "--ray-address",
      "127.0.0.1:6379"],
     "--ray-address applies to the ray backend; this study uses keras-tuner"),
    (["--preset", "smoke", "--space", "tiny", "--backend", "ray",
      "--algorithm", "random", "--max-trials", "2", "--oracle-port", "1"],
     "--oracle-port applies to the keras-tuner backend; this study uses ray"),
    (["--preset", "smoke", "--space", "tiny", "--backend", "ray",
      "--algorithm", "random", "--max-trials", "2", "--set",
      "data.source=directory", "--set", "data.path=/nonexistent"],
     "/nonexistent: no such directory"),
])
def test_bad_tune_input_is_one_line_exit_2(args, expected, tmp_path,
                                           capsys):
    from launch.cli import main

    workdir = tmp_path / "study"
    code = main(["tune", *args, "--workdir", str(workdir)])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and err.count("\n") == 1
    assert not workdir.exists()


@pytest.mark.parametrize("trial_function", [
    pytest.param(fake_trial, id="stand-in"),
    pytest.param(None, id="real", marks=pytest.mark.slow)])
def test_hyperband_rounds_continue_their_parent_trial(trial_function, base,
                                                      tmp_path):
    spec = study_spec(base, TINY_SPACE, backend="keras-tuner",
                      algorithm="hyperband", max_trials=4, max_epochs=3)
    lines = []
    run_study(tmp_path, spec, report=lines.append,
              trial_function=trial_function)
    project = _kt_project(tmp_path)
    children = [t for t in project.oracle.trials.values()
                if t.hyperparameters.values.get("tuner/trial_id")]
    assert children, "no Hyperband round continued a trial"
    for child in children:
        parent = child.hyperparameters.values["tuner/trial_id"]
        start = child.hyperparameters.values["tuner/initial_epoch"]
        mine = read_history(tmp_path / "trials" / child.trial_id
                            / "history.csv")
        theirs = read_history(tmp_path / "trials" / parent / "history.csv")
        assert mine[:start] == theirs[:start]  # inherited, not retrained
        assert len(mine) == child.hyperparameters.values["tuner/epochs"]
        assert any(f"[trial {child.trial_id}] resuming at epoch "
                   f"{start + 1}/" in line for line in lines)


@pytest.mark.parametrize("algorithm", ["random", "hyperband", "bayesian"])
def test_a_study_seed_samples_the_same_values_every_run(algorithm, base,
                                                        tmp_path):
    from tuning.backends.keras_tuner import make_oracle

    def first_values(seed, global_state):
        random.seed(global_state)  # what a seedless oracle would draw from
        oracle = make_oracle(study_spec(
            base, TINY_SPACE, backend="keras-tuner", algorithm=algorithm,
            max_trials=3, seed=seed))
        oracle._set_project_dir(str(tmp_path), f"{seed}-{global_state}")
        return [oracle.populate_space(str(i))["values"] for i in range(3)]

    assert first_values(0, 1) == first_values(0, 2)  # 0 is a seed too
    assert first_values(7, 1) == first_values(7, 2)
    assert first_values(0, 1) != first_values(7, 1)
