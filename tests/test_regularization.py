"""The knobs against overfitting: optimizer, loss, schedules, the padding
warning, and a run with all of them under a two-replica strategy."""

import json
import math
import types

import keras
import numpy as np
import pytest

from tuning.trial.callbacks import plateau_learning_rate
from tuning.trial.config import (ConfigError, Config, TrainConfig,
                                 apply_overrides)
from tuning.trial.data import warn_of_padded_final_steps
from tuning.trial.optimization import make_loss, make_optimizer
from tuning.trial.train import train_and_evaluate

from commands import run_cli


def test_the_optimizer_carries_decay_clipping_and_the_cosine():
    optimizer = make_optimizer(TrainConfig(
        epochs=4, weight_decay=0.05, clipnorm=1.0, lr_schedule="cosine"),
        2e-3, steps_per_epoch=10)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == 0.05 and optimizer.clipnorm == 1.0
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert (schedule.initial_learning_rate, schedule.decay_steps) == (
        2e-3, 40)
    assert float(schedule(40)) == pytest.approx(0.0, abs=1e-9)
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    assert optimizer._use_weight_decay(dense.kernel)
    assert not optimizer._use_weight_decay(dense.bias)
    plain = make_optimizer(TrainConfig(optimizer="sgd"), 1e-2,
                           steps_per_epoch=10)
    assert type(plain) is keras.optimizers.SGD
    assert plain.weight_decay is None and plain.clipnorm is None
    decayed = make_optimizer(TrainConfig(optimizer="rmsprop",
                                         weight_decay=0.01), 1e-3,
                             steps_per_epoch=10)
    assert type(decayed) is keras.optimizers.RMSprop
    assert decayed.weight_decay == 0.01


@pytest.mark.parametrize("num_classes", [2, 3])
def test_label_smoothing_moves_the_targets(num_classes):
    s = 0.2
    if num_classes == 2:
        probs, labels = np.array([[0.9], [0.3]]), np.array([1, 0])
        targets = labels * (1 - s) + s / 2
        p = probs[:, 0]
        expected = -np.mean(targets * np.log(p)
                            + (1 - targets) * np.log(1 - p))
    else:
        probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
        labels = np.array([0, 2])
        targets = np.eye(3)[labels] * (1 - s) + s / 3
        expected = -np.mean(np.sum(targets * np.log(probs), axis=1))
    loss = make_loss(num_classes, s)
    assert float(loss(labels, probs)) == pytest.approx(expected, rel=1e-5)
    true_class = (probs[np.arange(2), labels] if num_classes > 2 else
                  np.where(labels == 1, probs[:, 0], 1 - probs[:, 0]))
    assert float(make_loss(num_classes, 0.0)(labels, probs)) == (
        pytest.approx(-np.mean(np.log(true_class)), rel=1e-5))


def test_plateau_halves_the_rate_after_each_epoch_without_progress():
    accuracies = [0.60, 0.70, 0.69, 0.68, 0.71, 0.71]
    rows = [{"epoch": i + 1, "val_accuracy": a, "val_loss": 1 - a}
            for i, a in enumerate(accuracies)]
    rates = [plateau_learning_rate(rows[:n], base=1e-3,
                                   objective="val_accuracy")
             for n in range(len(rows) + 1)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 2.5e-4, 2.5e-4,
                                   1.25e-4])
    by_loss = plateau_learning_rate(rows, base=1e-3, objective="val_loss")
    assert by_loss == pytest.approx(1.25e-4)  # the same epochs improve


@pytest.mark.parametrize("override, expected", [
    ("train.weight_decay=-1", "train.weight_decay=-1.0: expected a number "
     ">= 0"),
    ("train.clipnorm=-0.5", "train.clipnorm=-0.5: expected a number >= 0"),
    ("train.label_smoothing=0.5", "expected a number in [0, 0.5)"),
    ("train.lr_schedule=step", "expected one of constant, cosine, plateau"),
    ("model.embedding_dropout=1", "expected a number in [0, 1)"),
    ("model.pooling=sum", "expected one of last, mean, max, attention"),
])
def test_bad_knob_values_name_the_key(override, expected):
    with pytest.raises(ConfigError, match=expected.replace(
            "[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(Config(), [override])


def _vectorized(lengths, width):
    return types.SimpleNamespace(kind="text",
                                 lengths={"train": np.asarray(lengths)},
                                 sequence_length=width,
                                 bucket_bounds=(4, width))


def test_an_unmasked_final_state_over_padding_is_warned_of_once():
    vectorized = _vectorized([2, 4, 10, 10], 10)  # half end in padding
    config = apply_overrides(Config(), {"model.pooling": "last",
                                        "model.mask_zero": False})
    lines = []
    warn_of_padded_final_steps(config, vectorized, report=lines.append)
    assert len(lines) == 1
    assert lines[0].startswith("warning: 50% of the training texts end in "
                               "padding")
    assert "model.mask_zero=true" in lines[0]
    bucketed = apply_overrides(config, {"data.bucket_by_length": True})
    lines.clear()
    warn_of_padded_final_steps(bucketed, vectorized, report=lines.append)
    assert lines[0].startswith("warning: 25% ")  # 4 fills its bucket
    for fixed in ({"model.mask_zero": True}, {"model.pooling": "max"}):
        lines.clear()
        warn_of_padded_final_steps(apply_overrides(config, fixed),
                                   vectorized, report=lines.append)
        assert lines == []
    lines.clear()
    warn_of_padded_final_steps(config, _vectorized([10] * 19 + [3], 10),
                               report=lines.append)
    assert lines == []  # 5 %: below the warning's share


KNOBS = {"model.embedding_dropout": 0.2, "model.pooling": "max",
         "train.weight_decay": 0.05, "train.clipnorm": 1.0,
         "train.label_smoothing": 0.1, "train.lr_schedule": "cosine",
         "train.epochs": 2, "data.max_examples": 200}


@pytest.mark.slow
def test_every_knob_trains_on_two_replicas_and_the_model_predicts(
        smoke_config, tmp_path, two_replicas):
    config = apply_overrides(smoke_config, KNOBS)
    strategy = two_replicas
    metrics = train_and_evaluate(config, tmp_path / "run", strategy=strategy,
                                 report=lambda _: None)
    assert metrics.status == "completed" and metrics.epochs_run == 2
    assert math.isfinite(metrics.best_val_loss)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"] == config.to_dict()
    assert saved["runtime"]["replicas"] == 2
    out = run_cli("predict", "--model", str(tmp_path / "run" / "model.keras"),
                  "a fine film", "dull")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 2


def test_the_plateau_callback_sets_the_rate_its_history_gives():
    """What a resumed run does: the rate comes from the rows alone."""
    from tuning.trial.callbacks import PlateauSchedule

    rows = [{"epoch": 1, "val_accuracy": 0.7},
            {"epoch": 2, "val_accuracy": 0.6}]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    lines = []
    callback = PlateauSchedule(types.SimpleNamespace(rows=rows), base=1e-3,
                               objective="val_accuracy",
                               report=lines.append)
    callback.set_model(model)
    callback.on_epoch_begin(2)
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-4)
    assert lines == ["learning rate 0.0005 from epoch 3: val_accuracy did "
                     "not improve"]
    callback.recorder.rows = rows[:1]
    callback.on_epoch_begin(1)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
