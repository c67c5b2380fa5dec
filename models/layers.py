"""Pooling layers over a recurrent layer's outputs that respect the mask,
and the mask of numeric series (`LengthMask`).

Keras' `GlobalMaxPooling1D` ignores masks (padding would take part in the
maximum); these two do not. All are registered, so a saved model that
holds them loads with plain `keras.models.load_model` once this module is
imported, as `import rnntune` does:

    import rnntune  # noqa: F401
    model = keras.models.load_model("runs/imdb/model.keras")

A new registered layer is imported by `rnntune` too.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnntune")
class MaskedMaxPooling1D(keras.layers.Layer):
    """The maximum of each feature over the unmasked steps.

    `[batch, steps, features]` to `[batch, features]`; masked steps (the
    padding) never win. A row whose steps are all masked gives zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        lowest = ops.full_like(inputs, float("-inf"))
        pooled = ops.max(ops.where(keep, inputs, lowest), axis=1)
        return ops.where(ops.isfinite(pooled), pooled,
                         ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="rnntune")
class AttentionPooling1D(keras.layers.Layer):
    """A weighted mean of the unmasked steps, the weights learned.

    Each step `h_t` scores `v . tanh(W h_t + b)`; a softmax over the
    unmasked steps turns the scores into weights (additive attention with
    one learned query, as in Yang et al. 2016's hierarchical attention
    networks). `[batch, steps, features]` to `[batch, features]`.

    Args:
        units: width of the scoring layer; None for the input's width.
    """

    def __init__(self, units: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        units = self.units or features
        self.kernel = self.add_weight(name="kernel",
                                      shape=(features, units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(units,),
                                    initializer="zeros")
        self.query = self.add_weight(name="query", shape=(units,),
                                     initializer="glorot_uniform")

    def call(self, inputs, mask=None):
        hidden = ops.tanh(ops.matmul(inputs, self.kernel) + self.bias)
        # Scores and weights in float32 whatever the policy: a softmax
        # over hundreds of steps needs the range.
        scores = ops.cast(ops.matmul(hidden, self.query), "float32")
        if mask is not None:
            scores = ops.where(ops.cast(mask, "bool"), scores, -1e9)
        weights = ops.cast(ops.softmax(scores, axis=1), inputs.dtype)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="rnntune")
class FirstSteps(keras.layers.Layer):
    """Each series cut to its first `steps` steps: `[values, lengths]` in,
    the same out, no longer than `steps` (`data.sequence_length`), so the
    exported model reads any series as its training split was read,
    whoever calls it."""

    def __init__(self, steps: int, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps

    def call(self, inputs):
        values, lengths = inputs
        return [values[:, :self.steps],
                ops.minimum(ops.cast(lengths, "int32"), self.steps)]

    def compute_output_shape(self, input_shape):
        values, lengths = input_shape
        steps = values[1] if values[1] is None else min(values[1],
                                                        self.steps)
        return [(values[0], steps, *values[2:]), lengths]

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


@keras.saving.register_keras_serializable(package="rnntune")
class LengthMask(keras.layers.Layer):
    """Masks each series' steps past its length: `[values, lengths]` in,
    `values` out with the mask every later layer reads (the recurrent
    layers, the poolings), as an embedding's `mask_zero` masks padding
    tokens. The mask comes from the lengths, not from a padding value, so
    a real step equal to the padding stays a step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        values, lengths = inputs
        # Each step's index, [batch, steps] (the steps are not known
        # until a batch comes).
        steps = ops.cumsum(ops.ones_like(values[..., 0], dtype="int32"),
                           axis=1) - 1
        return steps < ops.expand_dims(ops.cast(lengths, "int32"), 1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="rnntune")
class SeriesStandardization(keras.layers.Layer):
    """Each series' channels to zero mean and unit variance over its own
    real steps: `[values, lengths]` in, standardized values out (padding
    stays zero). What the UCR/UEA archive's "z-normalized" series are:
    the shape of a series, not its level or scale, as where a spectrum's
    baseline shifts from sample to sample. A constant channel becomes 0."""

    def call(self, inputs):
        values, lengths = inputs
        real, mean, variance = _moments(values, lengths)
        return (values - mean) * real / ops.sqrt(variance + 1e-12)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def _moments(values, lengths):
    """(real, mean, variance) of each series' channels over its real steps:
    `real` [batch, steps, 1] is 1 on them, the moments [batch, 1,
    channels]."""
    steps = ops.cumsum(ops.ones_like(values[..., :1], dtype="int32"),
                       axis=1) - 1
    real = ops.cast(steps < ops.reshape(ops.cast(lengths, "int32"),
                                        (-1, 1, 1)), values.dtype)
    count = ops.maximum(ops.sum(real, axis=1, keepdims=True), 1.0)
    mean = ops.sum(values * real, axis=1, keepdims=True) / count
    centred = (values - mean) * real
    return real, mean, ops.sum(centred * centred, axis=1,
                               keepdims=True) / count


@keras.saving.register_keras_serializable(package="rnntune")
class WindowScale(keras.layers.Layer):
    """A forecast back to its window's scale: `[forecast, values, lengths]`
    in, `forecast * std + mean` out, with the mean and standard deviation
    of the window's first channel (the target) over its real steps. With
    `SeriesStandardization` on the inputs, the network sees every window
    at one scale and forecasts in it, so a trend past the training span's
    range, or series of any units, stay in reach (reversible instance
    normalization)."""

    def call(self, inputs):
        forecast, values, lengths = inputs
        _, mean, variance = _moments(values[..., :1], lengths)
        return (forecast * ops.sqrt(variance[:, 0] + 1e-12)
                + mean[:, 0])

    def compute_output_shape(self, input_shape):
        return input_shape[0]
