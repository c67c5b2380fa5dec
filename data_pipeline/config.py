"""Typed configuration of a data source (texts or numeric series) and its
splits (no TensorFlow)."""

import dataclasses
import typing
from typing import Literal

Source = Literal["imdb", "rotten_tomatoes", "directory", "csv", "aclimdb",
                 "japanese_vowels", "basic_motions", "tecator",
                 "covid_3_month", "airline", "m1_yearly", "series"]
SOURCE_NAMES: tuple[str, ...] = typing.get_args(Source)
# The sources of numeric series (`data_pipeline.series`); the rest are text.
SERIES_SOURCES = ("japanese_vowels", "basic_motions", "tecator",
                  "covid_3_month", "airline", "m1_yearly", "series")
# The embedded long series to forecast (`data_pipeline.forecast`).
FORECAST_SOURCES = ("airline", "m1_yearly")
DecodeErrors = Literal["strict", "replace", "skip"]
Task = Literal["classification", "regression", "forecast"]
Gaps = Literal["refuse", "fill"]
Normalize = Literal["channel", "series", "none"]

# Where data is cached, and whether: they change no result.
CACHE_FIELDS = ("cache", "cache_dir")
# The fields that decide no text's split (the vectorizer's, the batching's
# and the cache's).
NOT_SPLIT = ("max_tokens", "sequence_length", "bucket_by_length",
             "normalize", "lookback", "stride", *CACHE_FIELDS)

ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"


class DataError(ValueError):
    """A data source that cannot be read as labelled texts (a user error)."""


def _require(ok: bool, key: str, value, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r}: expected {accepted}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the labelled texts or series come from, how they split and
    how they become a model's input.

    Attributes:
        source: texts: `imdb` and `rotten_tomatoes` are embedded (offline);
            `directory` reads `path` in class-per-folder layout (an
            `aclImdb/` root included); `csv` reads the file at `path`;
            `aclimdb` downloads `url` once into `cache_dir`. Numeric
            series (`data_pipeline.series`): `japanese_vowels` and
            `basic_motions` (classification), `tecator` and
            `covid_3_month` (regression) are embedded UCR/UEA and TSER
            sets (with their own test split); `series` reads the `.ts`,
            `.npz` or `.csv` file at `path` (and its test split from
            `test_path`, if given). Long series to forecast
            (`data.task=forecast`, `data_pipeline.forecast`): `airline`
            (144 monthly passenger counts) and `m1_yearly` (the M1
            competition's 181 yearly series) are embedded; `series` reads
            a CSV (`target_column`, optional `time_column`, `id_column`
            for many series) or a Monash `.tsf` file at `path`.
        path: directory or file for the `directory`, `csv` and `series`
            sources.
        test_path: `series`: a file of the same format holding the test
            split (as UCR/UEA ship `_TRAIN` and `_TEST`); none: the test
            split is `test_split` of `path`'s series.
        task: what a label is: `classification` (a class per text or
            series) or `regression` (a number per series; series
            sources only), or `forecast` (the next `horizon` steps of a
            long series' target, from the `lookback` steps before).
        normalize: series: `channel` scales each channel to zero mean and
            unit variance with statistics of the training split's real
            steps only (padding left out), inside the model, so it takes
            raw values; `series` scales each series' channels by their
            own mean and variance over its real steps (the archive's
            "z-normalized" series: shape kept, level and scale dropped,
            as where a spectrum's baseline drifts), also inside the model;
            `none` feeds the values as they are.
        channels_first: series `.npz`: `X` is (series, channels, time).
        value_columns: series long CSV: the value columns (the channels),
            comma-separated; empty reads a wide CSV (one series per row).
            Forecasting: the input columns besides the target.
        target_column: forecasting CSV: the column to forecast.
        lookback: forecasting: steps a window reads.
        horizon: forecasting: steps it predicts at once (a direct
            multi-output head).
        stride: forecasting: steps between training windows.
        season: forecasting: the seasonal period (12 for monthly data
            with a yearly cycle; 1 for none), for the seasonal-naive
            forecast and MASE.
        validation_horizons, test_horizons: forecasting: how many
            horizon-sized blocks at the end of each series are held out
            for validation, and after them for test.
        gaps: forecasting: a missing step or value is refused (`refuse`,
            saying how many) or interpolated linearly (`fill`).
        id_column, time_column: series long CSV: which rows form a series
            and their order.
        url: archive location for the `aclimdb` source.
        cache_dir: where `train` and `compare` cache vectorized data
            (under `data/`; default `~/.cache/rnntune`, see
            `data_pipeline.cache`), and where `aclimdb` downloads to
            (default `~/.keras`).
        cache: keep each data setting's vocabulary and ids in the cache
            (a study's in its workdir) and open them from there next time;
            off, every run reads and vectorizes the corpus itself.
        text_column: CSV column holding the texts.
        label_column: CSV column holding the labels (texts and series).
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
        sequence_length: tokens per text after truncation and padding; for
            series the most steps kept (a longer series keeps its first
            ones), padded only to the longest series, never resampled.
        bucket_by_length: batch texts (or series) of similar length
            together, each batch padded only to its length bucket's bound
            (faster where lengths vary; padding is still at the end, so
            masks and cuDNN stay valid).
        seed: seed of the splits, the sample and the shuffle.
    """

    source: Source = "imdb"
    path: str | None = None
    test_path: str | None = None
    task: Task = "classification"
    normalize: Normalize = "channel"
    channels_first: bool = False
    value_columns: str = ""
    target_column: str = ""
    lookback: int = 24
    horizon: int = 12
    stride: int = 1
    season: int = 1
    validation_horizons: int = 1
    test_horizons: int = 1
    gaps: Gaps = "refuse"
    id_column: str = "id"
    time_column: str = "time"
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
        _require(self.task in typing.get_args(Task), "task", self.task,
                 "one of classification, regression, forecast")
        for key in ("lookback", "horizon", "stride", "season",
                    "validation_horizons", "test_horizons"):
            _require(getattr(self, key) >= 1, key, getattr(self, key),
                     "an integer >= 1")
        _require(self.gaps in typing.get_args(Gaps), "gaps", self.gaps,
                 "one of refuse, fill")
        _require(self.task == "forecast" or self.source not in
                 FORECAST_SOURCES, "task", self.task,
                 f"forecast for source={self.source!r} (a long series)")
        _require(self.task != "forecast" or self.source in
                 (*FORECAST_SOURCES, "series"), "source", self.source,
                 "airline, m1_yearly or series (a CSV or .tsf file) for "
                 "task=forecast")
        _require(self.task == "classification" or self.kind == "series",
                 "task", self.task, "classification for a text source "
                 "(regression takes numeric series: source=series, or an "
                 "embedded set)")
        _require(self.normalize in typing.get_args(Normalize), "normalize",
                 self.normalize, "one of channel, series, none")
        _require(self.test_path is None or self.source == "series",
                 "test_path", self.test_path,
                 "none unless source='series' (the others split their own)")
        needs_path = self.source in ("directory", "csv", "series")
        _require(not needs_path or bool(self.path), "path", self.path,
                 f"a path, since source={self.source!r} reads one")
        _require(needs_path or not self.path, "path", self.path,
                 f"none for source={self.source!r}, which reads no path "
                 "(set data.source=csv, directory or series to read it)")
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
    def kind(self) -> str:
        """`series` for numeric series, else `text`."""
        return "series" if self.source in SERIES_SOURCES else "text"

    @property
    def split_key(self) -> tuple:
        """The fields that decide which texts land in which split (all but
        the vectorizer's): equal keys mean equal splits."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self)
                     if f.name not in NOT_SPLIT)

    @property
    def vectorize_key(self) -> tuple:
        """The fields that decide the token ids (or the series' arrays) of
        every split: equal keys mean equal prepared splits (batching is not
        among them)."""
        return (*self.split_key, self.max_tokens, self.sequence_length,
                self.normalize, self.lookback, self.stride)
