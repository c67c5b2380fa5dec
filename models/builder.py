"""Builds recurrent classifiers from a `ModelConfig`: of token ids
(texts), or of numeric series (values and their lengths).

    model = build_model(ModelConfig(cell="gru"), vocab_size=10000,
                        num_classes=2)
    model = build_series_model(ModelConfig(cell="gru"), channels=12,
                               num_classes=9, mean=mean, variance=variance)

Both share the recurrent stack, the pooling and the head; only what feeds
the stack differs (an embedding, or the normalized values).
"""

import keras
import numpy as np

from models.config import ModelConfig
from models.layers import (AttentionPooling1D, FirstSteps, LengthMask,
                           MaskedMaxPooling1D, SeriesStandardization,
                           WindowScale)

CELLS = {
    "simple_rnn": keras.layers.SimpleRNN,
    "gru": keras.layers.GRU,
    "lstm": keras.layers.LSTM,
}
# What the head reads of the last recurrent layer's outputs, by
# `ModelConfig.pooling` (`last` needs no layer: the layer returns its final
# state). Each leaves padding out when the embedding masks it.
POOLING_LAYERS = {
    "mean": lambda: keras.layers.GlobalAveragePooling1D(name="mean_pooling"),
    "max": lambda: MaskedMaxPooling1D(name="max_pooling"),
    "attention": lambda: AttentionPooling1D(name="attention_pooling"),
}


def build_model(config: ModelConfig, *, vocab_size: int,
                num_classes: int) -> keras.Model:
    """Embedding, stacked recurrent layers, a dense head and the output.

    Layers take the current Keras dtype policy (mixed precision included);
    the output layer computes in float32.

    Args:
        config: the architecture.
        vocab_size: embedding rows (the vectorizer's vocabulary size).
        num_classes: 2 gives one sigmoid unit, more give a softmax.

    Returns:
        An uncompiled functional model from `int[batch, length]` token ids
        (any length: batches bucketed by length differ) to probabilities.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: expected >= 2")
    inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, config.embedding_dim,
                               mask_zero=config.mask_zero,
                               trainable=config.embedding_trainable,
                               name="embedding")(inputs)
    if config.embedding_dropout:
        # One draw per token, shared by its features: whole tokens go.
        x = keras.layers.Dropout(config.embedding_dropout,
                                 noise_shape=(None, None, 1),
                                 name="embedding_dropout")(x)
    return keras.Model(inputs, _stack_and_head(config, x, num_classes),
                       name=f"{config.cell}_classifier")


def build_series_model(config: ModelConfig, *, channels: int,
                       num_classes: int, mean: np.ndarray,
                       variance: np.ndarray,
                       target: tuple[float, float] = (0.0, 1.0),
                       standardize_series: bool = False,
                       horizon: int = 0,
                       max_steps: int | None = None) -> keras.Model:
    """Normalization, the length mask, stacked recurrent layers, a dense
    head and the output, on raw values: the model a run exports.

    Args:
        config: the architecture (`embedding_*` and `mask_zero` apply to
            texts only: series are always masked, from their lengths).
        channels: values per step.
        num_classes: 2 gives one sigmoid unit, more give a softmax; 0 a
            regression (one linear unit, scaled by `target`).
        mean, variance: each channel's, of the training split's real
            steps (`data_pipeline.series_arrays`); inside the model, so it
            takes raw values.
        target: regression: the training targets' (mean, standard
            deviation); the linear unit's output is scaled and shifted by
            them, so the model starts near the targets' scale and
            predicts raw values.
        standardize_series: scale each series' channels by their own
            mean and variance first (`SeriesStandardization`).
        horizon: forecasting (`num_classes` 0): the steps predicted at
            once, one linear unit each; with `standardize_series` scaled
            back by the window's own target statistics (`WindowScale`).
        max_steps: read each series' first `max_steps` steps only (as
            its training split was cut: `data.sequence_length`), inside
            the model; None reads every step.

    Returns:
        An uncompiled functional model from `{"values": float32[batch,
        steps, channels], "lengths": int32[batch]}` (any number of steps;
        a series' steps past its length are padding, masked) to
        probabilities, or to float32[batch, 1] values (regression), or
        float32[batch, horizon] (forecasting).
    """
    if num_classes < 2 and num_classes != 0:
        raise ValueError(f"num_classes={num_classes}: expected >= 2, or 0 "
                         "for a regression")
    values = keras.Input(shape=(None, channels), dtype="float32",
                         name="values")
    lengths = keras.Input(shape=(), dtype="int32", name="lengths")
    x, steps = values, lengths
    if max_steps:
        x, steps = FirstSteps(max_steps, name="first_steps")([x, steps])
    if standardize_series:
        x = SeriesStandardization(name="series_standardization")(
            [x, steps])
    x = keras.layers.Normalization(
        axis=-1, mean=np.asarray(mean, np.float32),
        variance=np.asarray(variance, np.float32),
        name="normalization")(x)
    x = LengthMask(name="length_mask")([x, steps])
    kind = "regressor" if num_classes == 0 else "classifier"
    out = _stack_and_head(config, x, num_classes, target, max(horizon, 1))
    if horizon:
        kind = "forecaster"
        if standardize_series:
            out = WindowScale(dtype="float32", name="window_scale")(
                [out, values, lengths])
    return keras.Model({"values": values, "lengths": lengths}, out,
                       name=f"{config.cell}_series_{kind}")


def _stack_and_head(config: ModelConfig, x, num_classes: int,
                    target: tuple[float, float] = (0.0, 1.0),
                    outputs: int = 1):
    """The recurrent stack over `x` (masked or not), its pooling, dropout,
    head and output layer (`num_classes` 0: `outputs` linear units scaled
    by `target`'s mean and standard deviation): the output tensor."""
    cell = CELLS[config.cell]
    last = config.num_layers - 1
    for i, units in enumerate(config.layer_units):
        layer = cell(units,
                     return_sequences=i < last or config.pooling != "last",
                     recurrent_dropout=config.recurrent_dropout,
                     name=config.layer_names[i])
        if config.bidirectional:
            layer = keras.layers.Bidirectional(
                layer, name=f"bidirectional_{i}")
        x = layer(x)
        if i == last and config.pooling != "last":
            x = POOLING_LAYERS[config.pooling]()(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    if config.head_units:
        x = keras.layers.Dense(config.head_units, activation="relu",
                               name="head")(x)
    # float32 whatever the policy: probabilities and the loss stay exact.
    if num_classes == 0:
        x = keras.layers.Dense(outputs, dtype="float32", name="output")(x)
        mean, std = target
        return keras.layers.Rescaling(scale=std, offset=mean,
                                      dtype="float32",
                                      name="target_scale")(x)
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32",
                                  name="output")(x)
    return keras.layers.Dense(num_classes, activation="softmax",
                              dtype="float32", name="output")(x)
