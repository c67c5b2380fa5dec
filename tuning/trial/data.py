"""A run's data: read, vectorized and batched for its strategy, with the
warnings the data and model call for (said once, at the start)."""

import dataclasses
import math

import keras
import tensorflow as tf

from data_pipeline.cache import open_vectorized
from data_pipeline.pipeline import ShuffleEpoch, VectorizedSplits, padded_share
from data_pipeline.series import SeriesSplits
from data_pipeline.series_arrays import SeriesArrays
from data_pipeline.sources import TextSplits
from data_pipeline.vectors import FoundVectors, read_vectors
from models.config import cudnn_layers
from tuning.trial.callbacks import Report
from tuning.trial.config import Config


@dataclasses.dataclass(frozen=True)
class RunData:
    """The data of one run, batched for its strategy."""

    vectorized: VectorizedSplits
    datasets: dict[str, tf.data.Dataset]  # split name -> batches
    # Which epoch's order the training batches take (`ShuffleForEpoch`).
    train_epochs: ShuffleEpoch
    strategy: tf.distribute.Strategy
    per_replica_batch_size: int
    global_batch_size: int
    learning_rate: float  # scaled with the replicas if the config says so

    @property
    def num_classes(self) -> int:
        """The classes labels index; 0 for a regression."""
        return len(self.vectorized.info.class_names)

    @property
    def baseline_loss(self) -> float:
        """Regression (series, forecasts): the loss of the best constant
        prediction (`SeriesArrays.baseline_loss`); NaN otherwise."""
        if self.num_classes:
            return math.nan
        return self.vectorized.baseline_loss

    @property
    def steps_per_epoch(self) -> int:
        """Training batches per epoch (each a step of all replicas)."""
        return int(self.datasets["train"].cardinality())


def vectorized_data(config: Config, *,
                    splits: TextSplits | SeriesSplits | None = None,
                    report: Report) -> VectorizedSplits:
    """`config`'s data vectorized: `splits` (texts or series) if given,
    else its source, through the data cache (`data_pipeline.cache`)
    unless `data.cache` is off.

    Raises:
        DataError: the data source cannot be read.
    """
    if isinstance(splits, SeriesSplits):
        return SeriesArrays.build(splits, config.data)
    if splits is not None:
        return VectorizedSplits.build(
            splits, max_tokens=config.data.max_tokens,
            sequence_length=config.data.sequence_length)
    return open_vectorized(config.data, report=report)


def prepare_data(config: Config, strategy: tf.distribute.Strategy, *,
                 vectorized: VectorizedSplits, report: Report) -> RunData:
    """Batches every split of `vectorized` for the strategy (and says what
    reading the data skipped or repaired)."""
    replicas = strategy.num_replicas_in_sync
    global_batch_size = config.train.batch_size * replicas
    # Seeded before the model draws anything.
    keras.utils.set_random_seed(config.train.seed)
    for note in vectorized.info.notes:
        report(f"data: {note}")
    train_epochs = ShuffleEpoch()
    return RunData(
        vectorized=vectorized,
        datasets={name: vectorized.dataset(
            name, global_batch_size=global_batch_size,
            shuffle=name == "train", seed=config.data.seed,
            bucket=config.data.bucket_by_length, epochs=train_epochs)
            for name in vectorized.labels},
        train_epochs=train_epochs,
        strategy=strategy,
        per_replica_batch_size=config.train.batch_size,
        global_batch_size=global_batch_size,
        learning_rate=config.train.learning_rate * (
            replicas if config.train.scale_learning_rate else 1))


def warn_of_slow_kernels(config: Config, *, report: Report) -> None:
    """Says once, on a GPU machine, which recurrent layers will not run
    the cuDNN kernel and why (they run several times slower); without a
    GPU, that float16 is emulated (tens of times slower)."""
    if not tf.config.list_logical_devices("GPU"):
        if config.train.precision == "mixed_float16":
            report("warning: train.precision=mixed_float16 without a GPU: "
                   "the CPU emulates float16, tens of times slower than "
                   "float32")
        return
    slow = [layer for layer in cudnn_layers(config.model)
            if not layer["cudnn"]]
    if slow:
        report(f"warning: {', '.join(layer['layer'] for layer in slow)} "
               f"will not use cuDNN on the GPU: {slow[0]['why']}")


# From this share of padded texts on, a final state read after the padding
# costs accuracy (the seed's LSTM at 500 tokens stays near chance).
PADDED_WARNING_SHARE = 0.1


def warn_of_padded_final_steps(config: Config, vectorized: VectorizedSplits,
                               *, report: Report) -> None:
    """Says once when the head reads an unmasked final state and many
    texts end in padding: the state has then read the padding last (series
    are always masked)."""
    if (vectorized.kind == "series" or config.model.mask_zero
            or config.model.pooling != "last"):
        return
    share = padded_share(vectorized.lengths["train"],
                         vectorized.sequence_length,
                         vectorized.bucket_bounds
                         if config.data.bucket_by_length else None)
    if share >= PADDED_WARNING_SHARE:
        report(f"warning: {share:.0%} of the training texts end in padding, "
               "and the final state (model.pooling=last, "
               "model.mask_zero=false) reads it after the text; "
               "model.mask_zero=true or model.pooling=mean|max|attention "
               "avoids that")


def pretrained_vectors(config: Config, vectorized: VectorizedSplits, *,
                       report: Report) -> FoundVectors | None:
    """The vectors `model.pretrained_embeddings` holds for the run's
    vocabulary (said: how many words they cover), or None without a file.

    Raises:
        DataError: a missing or malformed file, or vectors whose width is
            not `model.embedding_dim`.
    """
    path = config.model.pretrained_embeddings
    if not path:
        return None
    vocabulary = vectorized.vectorizer.get_vocabulary()
    found = read_vectors(path, vocabulary,
                         dimensions=config.model.embedding_dim)
    report(f"model.pretrained_embeddings: {found.describe(len(vocabulary))}"
           + ("" if config.model.embedding_trainable
              else "; frozen (model.embedding_trainable=false)"))
    return found
