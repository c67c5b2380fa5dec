"""Strict, typed configuration: overrides, errors and presets."""

import pytest

from launch.presets import PRESETS, get_preset, smoke_variant
from tuning.trial.config import (Config, ConfigError, apply_overrides,
                                 from_dict, keys)


def test_round_trip_through_dict():
    config = apply_overrides(Config(), ["model.cell=gru", "data.path=x",
                                        "data.source=csv"])
    assert from_dict(config.to_dict()) == config


def test_overrides_parse_each_type():
    config = apply_overrides(Config(), [
        "model.units=128", "model.dropout=0.25", "model.mask_zero=true",
        "model.bidirectional=0", "data.path=none", "train.learning_rate=3e-4",
        "model.cell=simple_rnn"])
    assert config.model.units == 128
    assert config.model.dropout == 0.25
    assert config.model.mask_zero is True
    assert config.model.bidirectional is False
    assert config.data.path is None
    assert config.train.learning_rate == 3e-4
    assert config.model.cell == "simple_rnn"


def test_typed_overrides_as_tuners_give_them():
    config = apply_overrides(Config(), {"model.units": 32,
                                        "train.learning_rate": 1})
    assert config.model.units == 32
    assert config.train.learning_rate == 1.0


@pytest.mark.parametrize("override, expected", [
    ("model.unitz=3", "unknown config key 'model.unitz'; model keys are cell"),
    ("modle.units=3", "keys start with one of data., model., train."),
    ("model.units=abc", "model.units='abc': expected an integer"),
    ("model.units=0", "model.units=0: expected an integer >= 1"),
    ("model.cell=rnn", "model.cell='rnn': expected one of simple_rnn, gru, "
                       "lstm"),
    ("model.dropout=1", "model.dropout=1.0: expected a number in [0, 1)"),
    ("model.dropout=-0.1", "model.dropout=-0.1: expected a number in [0, 1)"),
    ("model.mask_zero=maybe", "expected true or false"),
    ("data.source=tweets", "data.source='tweets': expected one of imdb, "
                           "rotten_tomatoes, directory, csv, aclimdb"),
    ("data.source=csv", "data.path=None: expected a path"),
    ("train.epochs=1.5", "train.epochs='1.5': expected an integer"),
    ("train.min_examples_seen=-1", "train.min_examples_seen=-1: expected "
                                   "an integer >= 0 (0 for none)"),
    ("model.units", "malformed override 'model.units': expected key=value"),
])
def test_bad_overrides_name_key_and_accepted(override, expected):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Config(), [override])
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


def test_from_dict_rejects_unknown_keys_and_types():
    with pytest.raises(ConfigError, match="unknown config key 'train.epoch'"):
        from_dict({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="unknown config section 'optim'"):
        from_dict({"optim": {}})
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict({"model": {"units": True}})


def test_every_key_is_listed_once():
    listed = keys()
    assert len(listed) == len(set(listed))
    assert {"model.cell", "data.source", "train.epochs"} <= set(listed)


def test_min_examples_seen_adds_epochs_only_to_small_corpora():
    train = apply_overrides(Config(), {"train.epochs": 4,
                                       "train.min_examples_seen": 72000}).train
    assert train.epochs_for(18000) == 4  # four epochs reach it
    assert train.epochs_for(100000) == 4  # epochs stay the floor
    assert train.epochs_for(2880) == 25
    assert train.epochs_for(7000) == 11  # rounded up
    assert Config().train.epochs_for(10) == Config().train.epochs
    # The presets train their own epochs on their own data (25,000 IMDB
    # reviews and 8,530 sentences, less 10 % test and 20 % validation).
    assert get_preset("imdb").train.epochs_for(18000) == 4
    assert get_preset("rotten_tomatoes").train.epochs_for(6141) == 10


def test_a_study_trial_trains_the_epochs_its_search_gives():
    from studies import TINY_SPACE, study_spec

    base = apply_overrides(Config(), {"train.min_examples_seen": 72000})
    spec = study_spec(base, TINY_SPACE, backend="keras-tuner",
                      algorithm="random", max_trials=2, max_epochs=3)
    config = spec.trial_config({"model.cell": "gru", "model.units": 4,
                                "train.learning_rate": 1e-3}, epochs=2)
    assert (config.train.epochs, config.train.min_examples_seen) == (2, 0)


def test_seed_preset_is_the_notebook():
    config = get_preset("seed")
    assert config.model.cell == "simple_rnn"
    assert config.model.layer_units == (64, 32)
    assert config.model.mask_zero is False
    assert (config.data.max_tokens, config.data.sequence_length) == (10000,
                                                                     100)
    assert (config.train.batch_size, config.train.epochs) == (128, 10)
    assert config.train.learning_rate == 1e-3


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_and_their_smoke_twins(name):
    config = get_preset(name)
    smoke = get_preset(name, smoke=True)
    assert smoke == smoke_variant(config)
    for key in ("data.source", "model.cell", "model.mask_zero",
                "model.dropout", "model.embedding_dropout",
                "train.weight_decay", "train.lr_schedule",
                "train.early_stopping_patience"):
        assert smoke.flat()[key] == config.flat()[key], key
    assert smoke.model.units <= 16
    assert smoke.model.bidirectional is False  # seconds, not minutes
    if config.data.kind == "series":  # few series already: all kept
        assert smoke.data == config.data
        assert smoke.model.pooling == config.model.pooling
        assert smoke.train.epochs == 10
        return
    # A budget of tokens: short texts get more examples.
    assert smoke.data.max_examples * smoke.data.sequence_length == 300_000
    assert smoke.train.epochs == 3
    assert smoke.train.epochs_for(smoke.data.max_examples) == 3
    assert smoke.model.pooling == "mean"


def test_better_default_masks_padding():
    assert get_preset("imdb").model.mask_zero is True


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="presets are smoke, seed, imdb"):
        get_preset("nope")
