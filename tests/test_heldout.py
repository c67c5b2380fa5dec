"""The test split meets only the chosen model; what a number was made
with (versions, split fingerprints)."""

import json
import math

import pytest

from data_pipeline.sources import load_splits
from tuning.trial.config import apply_overrides
from tuning.tune import run_study

from studies import study_spec, trial_rows


def test_only_the_chosen_model_meets_the_test_split(smoke_config, tmp_path):
    """Real trials: none is evaluated on the test split but the one
    `best/` takes; every run records its versions and data."""
    config = apply_overrides(smoke_config, {"train.epochs": 1,
                                            "data.max_examples": 200})
    spec = study_spec(config, {"model.units": {"choice": [4, 8]}},
                      backend="keras-tuner", algorithm="grid", max_trials=2,
                      max_epochs=1)
    lines = []
    best = run_study(tmp_path, spec, report=lines.append)
    rows = trial_rows(tmp_path)
    assert len(rows) == 2
    for trial_id, row in rows.items():
        metrics = json.loads((tmp_path / "trials" / trial_id
                              / "metrics.json").read_text())
        if trial_id == best["trial_id"]:
            assert 0 <= metrics["test_accuracy"] <= 1
            assert row["test_accuracy"] == metrics["test_accuracy"]
            assert best["test_accuracy"] == metrics["test_accuracy"]
        else:
            assert math.isnan(metrics["test_accuracy"])
            assert row.get("test_accuracy") is None
    saved = json.loads((tmp_path / "best" / "hparams.json").read_text())
    assert saved["test_accuracy"] == best["test_accuracy"]
    # The chosen run's own config.json travels with its model.
    assert ((tmp_path / "best" / "config.json").read_text()
            == (tmp_path / "trials" / best["trial_id"]
                / "config.json").read_text())
    assert lines[-1].startswith(f"best: trial {best['trial_id']} "
                                "(val_accuracy ")
    assert f"test accuracy {best['test_accuracy']:.4f} (held out" in (
        lines[-1])
    # Versions and split fingerprints: once for the study, in every run.
    splits = load_splits(config.data)
    expected = {"train": splits.train.fingerprint(),
                "validation": splits.validation.fingerprint(),
                "test": splits.test.fingerprint()}
    study = json.loads((tmp_path / "provenance.json").read_text())
    assert study["fingerprints"] == expected
    assert set(study["versions"]) == {"python", "tensorflow", "keras",
                                      "keras_tuner", "ray", "rnntune"}
    assert all(study["versions"].values())
    for trial_id in rows:
        runtime = json.loads((tmp_path / "trials" / trial_id
                              / "config.json").read_text())["runtime"]
        assert runtime["fingerprints"] == expected
        assert runtime["versions"] == study["versions"]


def test_a_fingerprint_follows_the_texts_their_order_and_labels():
    import numpy as np

    from data_pipeline.readers import Split

    def split(texts, labels):
        return Split(np.array(texts, dtype=object),
                     np.array(labels, dtype="int32"))

    one = split(["a b", "c"], [0, 1]).fingerprint()
    assert one == split(["a b", "c"], [0, 1]).fingerprint()
    assert len(one) == 64
    for other in (split(["c", "a b"], [1, 0]), split(["a b", "c"], [1, 1]),
                  split(["a", "b c"], [0, 1]), split(["a b"], [0])):
        assert other.fingerprint() != one


@pytest.mark.parametrize("kind", ["texts", "series"])
def test_retrain_best_trains_the_choice_on_train_and_validation(
        smoke_config, tmp_path, kind):
    """`--retrain-best`, texts and series alike: `best/` holds a model
    trained on both splits for the chosen trial's best epoch, tested."""
    from keras import models

    import rnntune  # noqa: F401  (registers the layers)
    from launch.presets import get_preset

    config = (apply_overrides(smoke_config, {"data.max_examples": 200})
              if kind == "texts" else get_preset("basic_motions",
                                                 smoke=True))
    spec = study_spec(config, {"model.units": {"choice": [4]}},
                      backend="keras-tuner", algorithm="grid", max_trials=1,
                      max_epochs=1, retrain_best=True)
    best = run_study(tmp_path, spec, report=lambda line: None)
    saved = json.loads((tmp_path / "best" / "hparams.json").read_text())
    assert saved["retrained_on_train_and_validation"] is True
    examples = json.loads((tmp_path / "trials" / best["trial_id"]
                           / "config.json").read_text())["runtime"][
                               "examples"]
    retrained = json.loads((tmp_path / "best" / "retrain"
                            / "config.json").read_text())["runtime"]
    assert retrained["examples"]["train"] == (examples["train"]
                                              + examples["validation"])
    assert retrained["examples"]["test"] == examples["test"]
    assert 0 <= saved["test_accuracy"] <= 1
    model = models.load_model(tmp_path / "best" / "model.keras")
    assert model.count_params() == models.load_model(
        tmp_path / "best" / "retrain" / "model.keras").count_params()
