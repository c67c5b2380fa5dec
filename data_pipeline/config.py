"""Typed configuration of a text data source and its splits (no TensorFlow)."""

import dataclasses
import typing
from typing import Literal

Source = Literal["imdb", "rotten_tomatoes", "directory", "csv", "aclimdb"]
SOURCE_NAMES: tuple[str, ...] = typing.get_args(Source)
DecodeErrors = Literal["strict", "replace", "skip"]

# Where data is cached, and whether: they change no result.
CACHE_FIELDS = ("cache", "cache_dir")
# The fields that decide no text's split (the vectorizer's, the batching's
# and the cache's).
NOT_SPLIT = ("max_tokens", "sequence_length", "bucket_by_length",
             *CACHE_FIELDS)

ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"


class DataError(ValueError):
    """A data source that cannot be read as labelled texts (a user error)."""


def _require(ok: bool, key: str, value, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r}: expected {accepted}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the labelled texts come from, how they split and vectorize.

    Attributes:
        source: `imdb` and `rotten_tomatoes` are embedded (offline);
            `directory` reads `path` in class-per-folder layout (an
            `aclImdb/` root included); `csv` reads the file at `path`;
            `aclimdb` downloads `url` once into `cache_dir`.
        path: directory or CSV file for the `directory` and `csv` sources.
        url: archive location for the `aclimdb` source.
        cache_dir: where `train` and `compare` cache vectorized data
            (under `data/`; default `~/.cache/rnntune`, see
            `data_pipeline.cache`), and where `aclimdb` downloads to
            (default `~/.keras`).
        cache: keep each data setting's vocabulary and ids in the cache
            (a study's in its workdir) and open them from there next time;
            off, every run reads and vectorizes the corpus itself.
        text_column: CSV column holding the texts.
        label_column: CSV column holding the labels.
        decode_errors: what to do with a file (directory sources) or a
            row (CSV) that is not UTF-8: `strict` refuses the data set,
            `replace` keeps it with U+FFFD for the bad bytes, `skip`
            leaves it out; both say how many they touched.
        validation_split: share of the training texts held out for
            validation.
        test_split: share of all texts held out for test, for sources
            that have no test split of their own; 0 for none.
        max_examples: keep at most this many labelled texts of the source
            (a seeded, class-balanced sample taken before splitting; a
            source's own test set is capped alike); 0 keeps all.
        max_tokens: vocabulary size, padding and out-of-vocabulary included.
        sequence_length: tokens per text after truncation and padding.
        bucket_by_length: batch texts of similar length together, each
            batch padded only to its length bucket's bound (faster where
            texts vary in length; padding is still at the end, so masks
            and cuDNN stay valid).
        seed: seed of the splits, the sample and the shuffle.
    """

    source: Source = "imdb"
    path: str | None = None
    url: str = ACLIMDB_URL
    cache_dir: str | None = None
    cache: bool = True
    text_column: str = "text"
    label_column: str = "label"
    decode_errors: DecodeErrors = "strict"
    validation_split: float = 0.2
    test_split: float = 0.1
    max_examples: int = 0
    max_tokens: int = 10000
    sequence_length: int = 100
    bucket_by_length: bool = False
    seed: int = 123

    def __post_init__(self):
        _require(self.source in SOURCE_NAMES, "source", self.source,
                 f"one of {', '.join(SOURCE_NAMES)}")
        _require(self.decode_errors in typing.get_args(DecodeErrors),
                 "decode_errors", self.decode_errors,
                 "one of strict, replace, skip")
        needs_path = self.source in ("directory", "csv")
        _require(not needs_path or bool(self.path), "path", self.path,
                 f"a path, since source={self.source!r} reads one")
        _require(0 < self.validation_split < 1, "validation_split",
                 self.validation_split, "a number in (0, 1)")
        _require(0 <= self.test_split < 1, "test_split", self.test_split,
                 "a number in [0, 1)")
        _require(self.validation_split + self.test_split < 1,
                 "validation_split", self.validation_split,
                 "validation_split + test_split < 1")
        _require(self.max_examples >= 0, "max_examples", self.max_examples,
                 "an integer >= 0 (0 keeps all)")
        _require(self.max_tokens >= 3, "max_tokens", self.max_tokens,
                 "an integer >= 3")
        _require(self.sequence_length >= 1, "sequence_length",
                 self.sequence_length, "an integer >= 1")

    @property
    def split_key(self) -> tuple:
        """The fields that decide which texts land in which split (all but
        the vectorizer's): equal keys mean equal splits."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self)
                     if f.name not in NOT_SPLIT)

    @property
    def vectorize_key(self) -> tuple:
        """The fields that decide the token ids of every split: equal keys
        mean equal vectorized splits (batching is not among them)."""
        return (*self.split_key, self.max_tokens, self.sequence_length)
