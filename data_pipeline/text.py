"""The seed notebook's text standardization and the vectorizer built on it."""

import re
import string

import keras
import numpy as np
import tensorflow as tf

PUNCTUATION_PATTERN = f"[{re.escape(string.punctuation)}]"


# Registered so that a saved model holding the vectorizer reloads with a
# plain `keras.models.load_model` (no `custom_objects`) once this package is
# imported.
@keras.saving.register_keras_serializable(package="rnntune",
                                          name="standardize")
def standardize(texts):
    """Lower-cases, turns `<br />` into a space and strips punctuation.

    Exactly the seed notebook's `custom_standardization`; runs eagerly and
    inside `tf.data` or a model.

    Args:
        texts: a string tensor of any shape.

    Returns:
        A string tensor of the same shape.
    """
    lowercase = tf.strings.lower(texts)
    # <br /> must go before punctuation, or it would leave a "br" token.
    without_breaks = tf.strings.regex_replace(lowercase, "<br />", " ")
    return tf.strings.regex_replace(without_breaks, PUNCTUATION_PATTERN, "")


def make_vectorizer(*, max_tokens: int, sequence_length: int,
                    train_texts: np.ndarray,
                    adapt_batch_size: int = 1024
                    ) -> keras.layers.TextVectorization:
    """Builds a `TextVectorization` adapted on the training texts only.

    Args:
        max_tokens: vocabulary size, padding and `[UNK]` included.
        sequence_length: output length; shorter texts are padded with 0 at
            the end, longer ones truncated.
        train_texts: the training split's texts.
        adapt_batch_size: texts per batch while counting tokens.

    Returns:
        The adapted layer (integer output).
    """
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=standardize,
        output_mode="int",
        output_sequence_length=sequence_length,
        name="vectorizer",
    )
    texts = tf.data.Dataset.from_tensor_slices(train_texts)
    vectorizer.adapt(texts.batch(adapt_batch_size))
    return vectorizer


def save_vocabulary(vectorizer: keras.layers.TextVectorization,
                    path) -> None:
    """Writes the vocabulary one token a line, index order (0 is padding)."""
    tokens = vectorizer.get_vocabulary()
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{token}\n" for token in tokens)
