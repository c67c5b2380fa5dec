"""`rnntune tune --ensemble K`: greedy ensemble selection with replacement
on validation, exported as one model (texts: each member with its own
vectorizer), chosen over the single best only when it is better on
validation, and the test split met by the chosen model alone."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from commands import REPO, run_cli

from launch.presets import get_preset
from tuning.study.ensemble import select, validation_score
from tuning.trial.config import ConfigError, apply_overrides
from tuning.tune import run_study

from studies import study_spec


def test_selection_adds_with_replacement_and_leaves_a_weak_model_out():
    labels = np.array([0, 1, 1, 0, 1, 0])
    right = np.array([[0.2], [0.9], [0.6], [0.4], [0.45], [0.1]])
    other = np.array([[0.4], [0.6], [0.45], [0.1], [0.9], [0.2]])
    weak = np.array([[0.9], [0.1], [0.2], [0.8], [0.3], [0.7]])
    outputs = {"a": right, "b": other, "weak": weak}
    assert validation_score("val_accuracy", right, labels) == \
        pytest.approx(5 / 6)
    members = select(outputs, labels, objective="val_accuracy", size=3)
    assert "weak" not in members
    mean = sum(outputs[m] for m in members) / len(members)
    assert validation_score("val_accuracy", mean, labels) == 1.0
    # Scored as the runs score themselves: their label smoothing counts.
    assert validation_score("val_loss", right, labels,
                            label_smoothing=0.1) != pytest.approx(
        validation_score("val_loss", right, labels))
    # A regression minimizes its error: the better model, added twice.
    targets = np.array([1.0, 2.0, 3.0])
    good, bad = np.array([[1.1], [2.0], [2.9]]), np.array([[3.0], [0], [9]])
    assert select({"good": good, "bad": bad}, targets, objective="val_mae",
                  size=2) == ["good", "good"]


def test_ensemble_settings_are_checked():
    base = get_preset("basic_motions", smoke=True)
    space = {"model.cell": {"choice": ["gru"]}}
    with pytest.raises(ConfigError, match="--ensemble 1: expected 0"):
        study_spec(base, space, backend="keras-tuner", algorithm="grid",
                   max_trials=1, ensemble=1)
    with pytest.raises(ConfigError, match="--retrain-best trains on "
                       "validation too"):
        study_spec(base, space, backend="keras-tuner", algorithm="grid",
                   max_trials=1, ensemble=3, retrain_best=True)


@pytest.mark.slow
def test_a_text_study_exports_an_ensemble_of_its_own_vectorizers(tmp_path):
    base = apply_overrides(get_preset("smoke"), {"data.max_examples": 1200})
    space = {"data.max_tokens": {"choice": [1000, 3000]},
             "model.cell": {"choice": ["gru", "lstm"]}}
    spec = study_spec(base, space, backend="keras-tuner", algorithm="grid",
                      max_trials=4, max_epochs=1, ensemble=4)
    lines = []
    best = run_study(tmp_path, spec, report=lines.append)
    out = tmp_path / "best" / "ensemble"
    record = json.loads((out / "members.json").read_text())
    assert record["size"] == 4 and len(record["selection_order"]) == 4
    assert sum(m["weight"] for m in record["members"]) == pytest.approx(1)
    assert len(record["pool"]) == 4
    assert any(line.startswith("ensemble of ") for line in lines)
    # Only the chosen model met the test split.
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert all(r.get("test_accuracy") is None for r in rows) \
        == record["chosen"]
    if record["chosen"]:
        assert best["chosen_model"] == "ensemble"
        assert 0 <= record["test"]["test_accuracy"] <= 1
        assert best["test_accuracy"] == record["test"]["test_accuracy"]
    else:
        assert "test" not in record and best["test_accuracy"] is not None
    # Loads in a fresh process after the documented import; its output is
    # the members' weighted mean; `rnntune predict` reads it.
    members = {m["run"]: m["weight"] for m in record["members"]}
    script = f"""
import json, numpy as np, keras
import rnntune
texts = np.array(["A wonderful, moving film.", "Dull and far too long."],
                 dtype=object)
ensemble = keras.models.load_model({str(out / 'model.keras')!r})
mean = sum(w * keras.models.load_model(
    {str(tmp_path / 'trials')!r} + f"/{{t}}/model.keras").predict(
        texts, verbose=0) for t, w in {members!r}.items())
print(json.dumps(np.abs(ensemble.predict(texts, verbose=0) - mean)
                 .max().item()))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-5
    out_cli = run_cli("predict", "--model", str(out / "model.keras"),
                      "A wonderful, moving film.")
    assert out_cli.returncode == 0, out_cli.stderr
    label, probability, _ = out_cli.stdout.strip().split("\t")
    assert label in ("neg", "pos") and 0.5 <= float(probability) <= 1
    # Resumed, nothing retrains and the same ensemble comes back.
    again = run_study(tmp_path, spec, report=lambda _: None, resume=True)
    assert json.loads((out / "members.json").read_text())[
        "selection_order"] == record["selection_order"]
    assert again.get("chosen_model") == best.get("chosen_model")
    # Run again with another size, the ensemble is chosen again from the
    # same models (none retrained); without one, none is left in best/.
    models = {p: p.stat().st_mtime_ns
              for p in (tmp_path / "trials").glob("*/model.keras")}
    run_study(tmp_path, dataclasses.replace(spec, ensemble=2),
              report=lambda _: None)
    assert json.loads((out / "members.json").read_text())["size"] == 2
    run_study(tmp_path, dataclasses.replace(spec, ensemble=0),
              report=lambda _: None)
    assert not out.exists()
    assert {p: p.stat().st_mtime_ns for p in models} == models


def test_resume_refuses_the_options_of_a_study_rather_than_ignore_them(
        tmp_path):
    out = run_cli("tune", "--resume", "--ensemble", "3", "--max-trials",
                  "5", "--workdir", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.startswith("rnntune: error: --max-trials, --ensemble: "
                                 "--resume continues the study in ")
    assert len(out.stderr.splitlines()) == 1
