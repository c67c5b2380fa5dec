"""A run stopped after an epoch and resumed trains the epochs after it as
the uninterrupted run does: same shuffle order, same dropout draws."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from data_pipeline.pipeline import ShuffleEpoch, bucket_bounds, make_dataset
from tuning.trial.history import read_history
from tuning.trial.state import METADATA, TrainingState
from tuning.trial.train import train_and_evaluate

FIGURES = ("loss", "accuracy", "val_loss", "val_accuracy")


class Interrupted(Exception):
    """Raised by an epoch hook: the process dies after that epoch."""


def _stop_after(epoch):
    def hook(rows, last):
        if rows[-1]["epoch"] == epoch:
            raise Interrupted

    return hook


def _figures(workdir):
    return [{name: row[name] for name in ("epoch", *FIGURES)}
            for row in read_history(workdir / "history.csv")]


@pytest.fixture(scope="module")
def tiny_config(smoke_config):
    """The smoke preset (bucketed batches, token and output dropout,
    AdamW on a cosine schedule) on 200 texts for 3 epochs."""
    assert smoke_config.data.bucket_by_length
    assert smoke_config.model.embedding_dropout and smoke_config.model.dropout
    return dataclasses.replace(
        smoke_config,
        data=dataclasses.replace(smoke_config.data, max_examples=200),
        train=dataclasses.replace(smoke_config.train, epochs=3,
                                  early_stopping_patience=0))


@pytest.mark.parametrize("bucket, replicas", [
    pytest.param(True, 1, marks=pytest.mark.slow),
    # Padded batches (the seed preset's) and a two-replica strategy,
    # whose first look at a batch is a pass over the data of its own.
    pytest.param(False, 1, marks=pytest.mark.slow),
    pytest.param(True, 2, marks=pytest.mark.slow)])
def test_a_resumed_run_follows_the_uninterrupted_run(tiny_config, tmp_path,
                                                     request, bucket,
                                                     replicas):
    config = dataclasses.replace(tiny_config, data=dataclasses.replace(
        tiny_config.data, bucket_by_length=bucket))
    strategy = (request.getfixturevalue("two_replicas") if replicas == 2
                else None)
    train_and_evaluate(config, tmp_path / "whole", strategy=strategy,
                       report=lambda _: None)
    with pytest.raises(Interrupted):
        train_and_evaluate(config, tmp_path / "cut", strategy=strategy,
                           report=lambda _: None,
                           epoch_hooks=[_stop_after(1)])
    assert TrainingState(tmp_path / "cut").epoch == 1
    said = []
    train_and_evaluate(config, tmp_path / "cut", strategy=strategy,
                       report=said.append)
    assert "resuming at epoch 2/3 from the last finished epoch" in said
    whole, cut = _figures(tmp_path / "whole"), _figures(tmp_path / "cut")
    assert [row["epoch"] for row in cut] == [1, 2, 3]
    # Epochs 2 and 3 ran in another call: same batches, same dropout.
    for ours, theirs in zip(cut, whole):
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("bucketed", [True, False])
def test_an_epochs_order_depends_on_the_seed_and_epoch_alone(bucketed):
    rng = np.random.default_rng(0)
    ids = np.zeros((60, 12), dtype=np.int64)
    for row, size in zip(ids, rng.integers(1, 13, len(ids))):
        row[:size] = rng.integers(2, 50, size)
    labels = np.arange(len(ids), dtype=np.int32)
    bounds = bucket_bounds(np.count_nonzero(ids, axis=1), 12)

    def passes(epochs, count):
        ds = make_dataset(ids, labels, global_batch_size=8, shuffle=True,
                          seed=7, bucket_bounds=bounds if bucketed else None,
                          epochs=epochs)
        return [[b.tolist() for _, b in ds.as_numpy_iterator()]
                for _ in range(count)]

    counted = passes(None, 3)  # passes counted: epochs 0, 1, 2
    assert counted[0] != counted[1] != counted[2]
    resumed = ShuffleEpoch()
    resumed.set(2)
    assert passes(resumed, 1) == [counted[2]]
    # A pass that is no epoch (a strategy's look at a batch) takes none
    # from the next epoch once the epoch is set.
    clock = ShuffleEpoch()
    ds = make_dataset(ids, labels, global_batch_size=8, shuffle=True,
                      seed=7, bucket_bounds=bounds if bucketed else None,
                      epochs=clock)
    next(ds.as_numpy_iterator())
    clock.set(1)
    assert [b.tolist() for _, b in ds.as_numpy_iterator()] == counted[1]


def _dropout_model():
    inputs = keras.Input((4,))
    x = keras.layers.Dropout(0.5)(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(optimizer="adam", loss="mse")
    return model


def test_the_state_keeps_where_the_dropout_seeds_stand(tmp_path):
    keras.utils.set_random_seed(1)
    model = _dropout_model()
    x, y = np.ones((16, 4)), np.ones((16, 1))
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    state = TrainingState(tmp_path)
    state.commit(model, epoch=2)
    seeds = [v.numpy().tolist() for v in model.variables
             if v.name == "seed_generator_state"]
    assert seeds

    keras.utils.set_random_seed(1)
    fresh = _dropout_model()
    TrainingState(tmp_path).load(fresh)
    assert [v.numpy().tolist() for v in fresh.variables
            if v.name == "seed_generator_state"] == seeds
    # Then both draw the same masks.
    for each in (model, fresh):
        each.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    for ours, theirs in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)

    # A state saved before seeds were kept still loads (seeds as built).
    (state.path / METADATA).write_text(json.dumps({"epoch": 2}))
    TrainingState(tmp_path).load(_dropout_model())
