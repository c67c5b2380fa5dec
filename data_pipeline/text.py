"""The seed notebook's text standardization and the vectorizer built on it."""

import os
import pathlib
import re
import string

import keras
import numpy as np
import tensorflow as tf

PUNCTUATION_PATTERN = f"[{re.escape(string.punctuation)}]"
OOV_TOKEN = "[UNK]"  # TextVectorization's, index 1


# Registered so that a saved model holding the vectorizer reloads with a
# plain `keras.models.load_model` (no `custom_objects`) once this module is
# imported, as `import rnntune` does.
@keras.saving.register_keras_serializable(package="rnntune",
                                          name="standardize")
def standardize(texts):
    """Lower-cases, turns `<br />` into a space and strips punctuation.

    The seed notebook's `custom_standardization`, with one addition: a text
    left with no token at all (only punctuation, only `<br />`) becomes
    `[UNK]`, the out-of-vocabulary token, so that no row is all padding (a
    fully masked row, which cuDNN refuses). Runs eagerly and inside
    `tf.data` or a model.

    Args:
        texts: a string tensor of any shape.

    Returns:
        A string tensor of the same shape.
    """
    lowercase = tf.strings.lower(texts)
    # <br /> must go before punctuation, or it would leave a "br" token.
    without_breaks = tf.strings.regex_replace(lowercase, "<br />", " ")
    words = tf.strings.regex_replace(without_breaks, PUNCTUATION_PATTERN, "")
    return tf.strings.regex_replace(words, r"^\s*$", OOV_TOKEN)


def make_vectorizer(*, max_tokens: int, sequence_length: int,
                    train_texts: np.ndarray,
                    adapt_batch_size: int = 1024
                    ) -> keras.layers.TextVectorization:
    """Builds a `TextVectorization` adapted on the training texts only.

    The layer returned holds its vocabulary in its config, so a saved
    model reloads it exactly: Keras writes an adapted layer's vocabulary
    as a text asset one token a line and reads it back with
    `str.splitlines()`, which also splits inside tokens holding U+0085,
    U+2028, `\\x1c` and the like (the full IMDB vocabulary has one).

    Args:
        max_tokens: vocabulary size, padding and `[UNK]` included.
        sequence_length: output length; shorter texts are padded with 0 at
            the end, longer ones truncated.
        train_texts: the training split's texts.
        adapt_batch_size: texts per batch while counting tokens.

    Returns:
        The adapted layer (integer output).
    """
    return vectorizer_for(
        adapt_vocabulary(train_texts, max_tokens=max_tokens,
                         batch_size=adapt_batch_size),
        max_tokens=max_tokens, sequence_length=sequence_length)


def adapt_vocabulary(train_texts, *, max_tokens: int,
                     batch_size: int = 1024) -> list[str]:
    """The vocabulary `TextVectorization.adapt` finds in `train_texts`
    (padding and `[UNK]` first, then by count, most frequent first).

    The tokens are ranked once for all sizes and then cut, so a smaller
    `max_tokens` gives a prefix of a larger one's vocabulary."""
    counter = keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardize, output_mode="int")
    counter.adapt(text_batches(train_texts, batch_size))
    return [str(token) for token in counter.get_vocabulary()]


def text_batches(texts, batch_size: int) -> tf.data.Dataset:
    """`texts` (a sequence of str) as a dataset of string batches, each
    made as it is read: the texts are never copied into one tensor."""

    def batches():
        for start in range(0, len(texts), batch_size):
            yield np.asarray(texts[start:start + batch_size], dtype=object)

    return tf.data.Dataset.from_generator(
        batches, output_signature=tf.TensorSpec((None,), tf.string))


def vectorizer_for(vocabulary: list[str], *, max_tokens: int,
                   sequence_length: int) -> keras.layers.TextVectorization:
    """The integer `TextVectorization` of an adapted `vocabulary`."""
    return keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardize, output_mode="int",
        output_sequence_length=sequence_length, vocabulary=vocabulary,
        name="vectorizer")


# Python's `str.splitlines()` ends a line at each of these, so a token
# holding one cannot be written one a line as it is.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ESCAPES = {"\\": "\\\\", **{c: f"\\u{ord(c):04x}" for c in LINE_BREAKS}}
_UNESCAPE = re.compile(r"\\(\\|u[0-9a-f]{4})")


def escape_token(token: str) -> str:
    """A token as one line of `vocabulary.txt`: a backslash becomes `\\\\`
    and each line-break character `\\uXXXX`."""
    return "".join(_ESCAPES.get(c, c) for c in token)


def unescape_token(line: str) -> str:
    """The inverse of `escape_token`."""
    return _UNESCAPE.sub(
        lambda m: "\\" if m[1] == "\\" else chr(int(m[1][1:], 16)), line)


def save_vocabulary(vectorizer: keras.layers.TextVectorization,
                    path: pathlib.Path) -> None:
    """Writes the vectorizer's vocabulary (`write_vocabulary`)."""
    write_vocabulary(vectorizer.get_vocabulary(), path)


def write_vocabulary(tokens, path: pathlib.Path) -> None:
    """Writes `tokens` one a line, index order (0 is padding), each
    escaped with `escape_token`; `load_vocabulary` reads them back."""
    lines = "".join(f"{escape_token(str(token))}\n" for token in tokens)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(lines, encoding="utf-8")
    os.replace(tmp, path)


def load_vocabulary(path: pathlib.Path) -> list[str]:
    """The tokens of a `vocabulary.txt`, index order."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    return [unescape_token(line) for line in text.split("\n")[:-1]]
