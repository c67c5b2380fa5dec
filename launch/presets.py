"""Named configurations, as code (no TensorFlow here).

Every preset has a seconds-long smoke twin, `smoke_variant(config)`, that
keeps its choices (cell, masking, source) but shrinks data, model and
epochs: `rnntune train --preset seed --smoke`.
"""

import dataclasses
from collections.abc import Callable

from data_pipeline.config import DataConfig
from models.config import ModelConfig
from tuning.trial.config import Config, ConfigError, TrainConfig


def seed() -> Config:
    """The course notebook exactly: its SimpleRNN, data and training."""
    return Config(
        data=DataConfig(source="imdb", max_tokens=10000, sequence_length=100,
                        validation_split=0.2, seed=123),
        model=ModelConfig(cell="simple_rnn", units=64, num_layers=2,
                          units_decay=0.5, embedding_dim=32,
                          mask_zero=False, head_units=16),
        train=TrainConfig(epochs=10, batch_size=128, learning_rate=1e-3,
                          optimizer="adam"),
    )


def imdb() -> Config:
    """Long reviews: 500 tokens bucketed by length, a masked bidirectional
    GRU of 64 units over 128-wide embeddings whose outputs are max-pooled
    over the text, whole-token dropout, AdamW on a cosine schedule over 4
    epochs (the best of a 5-trial `pooled` study: README, Presets). Four
    epochs of IMDB's 18,000 training reviews are 72,000 examples' worth,
    and a smaller corpus trains as many (`train.min_examples_seen`): more
    epochs, with early stopping to end them."""
    return Config(
        data=DataConfig(source="imdb", max_tokens=20000, sequence_length=500,
                        bucket_by_length=True),
        model=ModelConfig(cell="gru", units=64, num_layers=1,
                          bidirectional=True, embedding_dim=128,
                          mask_zero=True, embedding_dropout=0.2, dropout=0.3,
                          pooling="max", head_units=16),
        train=TrainConfig(epochs=4, min_examples_seen=72_000,
                          batch_size=64, learning_rate=1.1e-3,
                          weight_decay=0.01, lr_schedule="cosine",
                          early_stopping_patience=2),
    )


def rotten_tomatoes() -> Config:
    """Short sentences, few thousand of them: a masked bidirectional LSTM
    of 32 units over 128-wide embeddings, whole-token dropout, AdamW and
    early stopping (the best of a 20-trial `regularized` study, confirmed
    over 3 new seeds: README, Presets). Its 10 epochs of 6,140 training
    sentences are about 60,000 examples' worth, which a smaller corpus
    trains too (`train.min_examples_seen`)."""
    return Config(
        data=DataConfig(source="rotten_tomatoes", max_tokens=20000,
                        sequence_length=50, bucket_by_length=True),
        model=ModelConfig(cell="lstm", units=32, num_layers=1,
                          bidirectional=True, embedding_dim=128,
                          mask_zero=True, embedding_dropout=0.1,
                          dropout=0.2, head_units=16),
        train=TrainConfig(epochs=10, min_examples_seen=60_000,
                          batch_size=64, learning_rate=2.5e-3,
                          weight_decay=0.01, early_stopping_patience=3),
    )


def japanese_vowels() -> Config:
    """Ragged multivariate series (UCR/UEA JapaneseVowels: 12 channels, 7
    to 29 steps, 9 speakers; 270 training and 370 test series as shipped):
    the series masked from their lengths, never resampled, each channel
    normalized on the training steps inside the model; a bidirectional GRU
    of 128 units whose outputs are mean-pooled over the real steps, AdamW
    (the lowest validation loss of 3 seeds among width, depth, pooling,
    cell, dropout, rate, batch and regularization variants: README,
    Presets)."""
    return Config(
        data=DataConfig(source="japanese_vowels", sequence_length=29,
                        validation_split=0.2),
        model=ModelConfig(cell="gru", units=128, num_layers=1,
                          bidirectional=True, dropout=0.2, pooling="mean"),
        train=TrainConfig(epochs=60, batch_size=16, learning_rate=3e-3,
                          weight_decay=0.01, early_stopping_patience=10),
    )


def basic_motions() -> Config:
    """Equal-length multivariate series (UCR/UEA BasicMotions: 6
    accelerometer and gyroscope channels, 100 steps, 4 activities; 40
    training and 40 test series): a bidirectional GRU of 64 units
    mean-pooled over time, the channels normalized inside the model. Its
    10 validation series are all right within a few epochs, so the epoch
    is chosen by validation loss (chosen as `japanese_vowels` was)."""
    return Config(
        data=DataConfig(source="basic_motions", sequence_length=100,
                        validation_split=0.25),
        model=ModelConfig(cell="gru", units=64, num_layers=1,
                          bidirectional=True, dropout=0.2, pooling="mean"),
        train=TrainConfig(epochs=80, batch_size=8, learning_rate=3e-3,
                          objective="val_loss", early_stopping_patience=15),
    )


def tecator() -> Config:
    """Regression of univariate series (TSER Tecator: the near-infrared
    absorbance spectrum of a meat sample, 100 wavelengths, and its fat
    content in percent; 172 training and 43 test samples as shipped): a
    bidirectional GRU of 64 units mean-pooled over the spectrum, each
    spectrum standardized by its own mean and variance inside the model
    (its shape, not its baseline, tells the fat content), a linear output
    scaled to the training targets, mean squared error, a cosine schedule
    over 150 epochs, the epoch chosen by validation loss (the lowest mean
    validation loss of 3 seeds among a constant rate with early stopping,
    a plateau schedule and this: README, Presets)."""
    return Config(
        data=DataConfig(source="tecator", task="regression",
                        normalize="series", sequence_length=100,
                        validation_split=0.2),
        model=ModelConfig(cell="gru", units=64, num_layers=1,
                          bidirectional=True, pooling="mean"),
        train=TrainConfig(epochs=150, batch_size=16, learning_rate=3e-3,
                          lr_schedule="cosine", objective="val_loss"),
    )


def airline() -> Config:
    """Forecasting one monthly series (the airline passengers, 1949-1960:
    144 months, a trend and a yearly cycle that grows with it): the next
    36 months at once from the 12 before, the last 36 held out for test
    and the 36 before them for validation (as the published figures
    hold out the last 36), each window standardized by its own mean and
    variance inside the model and the forecast scaled back (so the trend
    may leave the training range), a GRU of 32 units, mean squared
    error, the epoch chosen by validation loss (a lookback of 12 had a
    tenth of 24's mean validation loss over 2 seeds; 16 units or a rate
    of 1e-3 did worse: README, Forecasting)."""
    return Config(
        data=DataConfig(source="airline", task="forecast",
                        normalize="series", lookback=12, horizon=36,
                        season=12),
        model=ModelConfig(cell="gru", units=32, num_layers=1,
                          pooling="last"),
        train=TrainConfig(epochs=200, batch_size=8, learning_rate=3e-3,
                          objective="val_loss"),
    )


def m1_yearly() -> Config:
    """Forecasting many short yearly series (the M1 competition's 181,
    15 to 58 years each, units from tens to millions): the next 6 years
    from the 6 before, the last 6 of each series held out for test and
    the 6 before them for validation; each window standardized by its own
    statistics inside the model, the loss weighted so that every series
    counts alike (MASE-like), a GRU of 64 units (the lowest mean
    validation loss of 2 seeds among 32 and 64 units, 2 layers, a
    lookback of 4 and a rate of 1e-3: README, Forecasting)."""
    return Config(
        data=DataConfig(source="m1_yearly", task="forecast",
                        normalize="series", lookback=6, horizon=6,
                        season=1),
        model=ModelConfig(cell="gru", units=64, num_layers=1,
                          pooling="last"),
        train=TrainConfig(epochs=60, batch_size=64, learning_rate=3e-3,
                          objective="val_loss",
                          early_stopping_patience=15),
    )


# The twin's data budget: examples x tokens per example, so that short texts
# get more examples for the same seconds.
SMOKE_TOKENS = 300_000


def smoke_variant(config: Config) -> Config:
    """The seconds-long twin of `config`, a first run that learns.

    It keeps the preset's source, cell, depth (up to 2), masking, dropout
    and early stopping; it takes a class-balanced sample of the data
    (`SMOKE_TOKENS` tokens' worth: 3,000 IMDB reviews at 100 tokens, 6,000
    Rotten Tomatoes sentences at 50), a 16-unit one-direction model
    (token dropout, weight decay and schedule kept), three epochs of
    batch 32 at a learning rate of at least 3e-3, and mean pooling, which
    learns on few examples in three epochs where a last-state head still
    guesses (about 0.55 validation accuracy for the seed twin's GRU).
    A series preset keeps all its (few) series and its pooling: ten
    epochs (a second or two) of a 16-unit one-direction model.
    """
    if config.data.kind == "series":  # small already: the model shrinks
        return dataclasses.replace(
            config,
            model=dataclasses.replace(config.model,
                                      units=min(config.model.units, 16),
                                      bidirectional=False,
                                      num_layers=min(config.model.num_layers,
                                                     2)),
            train=dataclasses.replace(config.train, epochs=10,
                                      min_examples_seen=0))
    sequence_length = min(config.data.sequence_length, 100)
    return dataclasses.replace(
        config,
        data=dataclasses.replace(
            config.data, max_examples=SMOKE_TOKENS // sequence_length,
            max_tokens=min(config.data.max_tokens, 5000),
            sequence_length=sequence_length),
        model=dataclasses.replace(config.model,
                                  units=min(config.model.units, 16),
                                  bidirectional=False,
                                  num_layers=min(config.model.num_layers, 2),
                                  embedding_dim=16, pooling="mean"),
        train=dataclasses.replace(
            config.train, epochs=3, min_examples_seen=0, batch_size=32,
            learning_rate=max(config.train.learning_rate, 3e-3)),
    )


PRESETS: dict[str, tuple[str, Callable[[], Config]]] = {
    "smoke": ("seconds on a CPU: the imdb preset shrunk, for a first try "
              "and CI", lambda: smoke_variant(imdb())),
    "seed": ("the course notebook exactly: 2-layer SimpleRNN 64/32, 10k "
             "tokens, 100 steps, batch 128, 10 epochs", seed),
    "imdb": ("long reviews: masked BiGRU 64 max-pooled, 500 steps "
             "bucketed, token dropout, AdamW, cosine over 4 epochs", imdb),
    "rotten_tomatoes": ("short sentences: masked BiLSTM 32, 50 steps "
                        "bucketed, token dropout, AdamW, early stopping",
                        rotten_tomatoes),
    "japanese_vowels": ("numeric series, ragged (7 to 29 steps, 12 "
                        "channels, 9 classes): masked BiGRU 128 "
                        "mean-pooled, channels normalized in the model",
                        japanese_vowels),
    "basic_motions": ("numeric series, 100 steps, 6 channels, 4 classes: "
                      "BiGRU 64 mean-pooled, channels normalized in the "
                      "model, epoch chosen by validation loss",
                      basic_motions),
    "tecator": ("numeric series regression (fat content from a 100-step "
                "spectrum): each spectrum standardized, BiGRU 64 "
                "mean-pooled, linear output, mean squared error, cosine "
                "over 150 epochs", tecator),
    "airline": ("forecasting one monthly series: the next 36 months from "
                "12, windows standardized in the model, GRU 32", airline),
    "m1_yearly": ("forecasting 181 short yearly series (M1): the next 6 "
                  "years from 6, every series weighed alike, GRU 64",
                  m1_yearly),
}


def get_preset(name: str, *, smoke: bool = False) -> Config:
    """The preset's config, or its smoke twin.

    Raises:
        ConfigError: `name` is not a preset; the message lists them.
    """
    if name not in PRESETS:
        raise ConfigError(
            f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    config = PRESETS[name][1]()
    return smoke_variant(config) if smoke else config
