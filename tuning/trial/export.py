"""A run's end-to-end model: raw strings (or raw series values and
lengths) in, probabilities out."""

import os

import keras

from tuning.trial.run import RunDir


def export_model(vectorizer: keras.layers.TextVectorization | None,
                 model: keras.Model) -> keras.Model:
    """The end-to-end model: a batch of raw strings in (through
    `vectorizer`), or, without one, `model`'s own inputs (a series model
    normalizes raw values itself); probabilities out.

    It holds an uncompiled copy of `model`: no optimizer (inference needs
    none, and a mixed-precision one would not load back as it was), and
    no loss or metrics, whose training-only classes (label smoothing,
    balanced accuracy) a plain `keras.models.load_model` does not know.
    """
    # Not `clone_model`: it compiles the copy as the original was.
    inference = keras.Model.from_config(model.get_config())
    inference.set_weights(model.get_weights())
    if vectorizer is None:
        return inference
    texts = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(texts, inference(vectorizer(texts)), name="rnntune")


def export(run: RunDir, vectorizer: keras.layers.TextVectorization | None,
           model: keras.Model) -> None:
    """Saves the end-to-end model as the run's model file, whole or not at
    all."""
    partial = run.model_path.with_name(".partial." + run.MODEL)
    export_model(vectorizer, model).save(partial)
    os.replace(partial, run.model_path)
