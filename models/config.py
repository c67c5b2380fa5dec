"""Typed configuration of a recurrent text classifier (no TensorFlow here)."""

import dataclasses
import typing
from typing import Literal

Cell = Literal["simple_rnn", "gru", "lstm"]
CELL_NAMES: tuple[str, ...] = typing.get_args(Cell)
Pooling = Literal["last", "mean", "max", "attention"]
POOLING_NAMES: tuple[str, ...] = typing.get_args(Pooling)


def _require(ok: bool, key: str, value, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r}: expected {accepted}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of one classifier.

    Layer `i` (from 0) of the recurrent stack has
    `max(1, round(units * units_decay**i))` units, so the defaults give the
    seed notebook's 64 then 32. Every recurrent layer but the last returns
    sequences.

    Attributes:
        cell: recurrent cell type, one of `CELL_NAMES`.
        units: units of the first recurrent layer.
        num_layers: number of stacked recurrent layers.
        units_decay: factor applied to the units of each deeper layer.
        embedding_dim: width of the token embedding.
        embedding_dropout: share of whole tokens dropped from each text in
            training (the token's embedding zeroed, the rest scaled): the
            model cannot lean on a few words.
        mask_zero: mask padding (token 0) so it never reaches the state.
        bidirectional: wrap every recurrent layer in `Bidirectional`.
        dropout: rate of the `Dropout` after each recurrent layer.
        recurrent_dropout: dropout rate of each recurrent layer's state
            between steps; above 0 a GRU or LSTM cannot use the cuDNN
            kernel on a GPU (`cudnn_layers`), which is several times
            faster.
        pooling: what the head reads of the last recurrent layer: `last`,
            its final state (the notebook's); `mean` or `max`, the mean or
            the per-feature maximum of its outputs over the text's tokens;
            or `attention`, their weighted mean under learned weights (a
            softmax over the tokens). Padding is left out of all three
            when `mask_zero`. These give every token a direct path to the
            loss: they learn faster on few examples and read long texts
            better than the final state.
        head_units: width of the relu `Dense` layer before the output;
            0 for none.
        pretrained_embeddings: a word-vectors file (GloVe, word2vec or
            fastText, text or binary, gzip or not:
            `data_pipeline.vectors`) whose vectors start the embedding
            rows of the words it holds (the others start random); their
            width must be `embedding_dim`. None: all rows start random.
        embedding_trainable: train the embedding (fine-tune the vectors);
            false freezes it.
    """

    cell: Cell = "lstm"
    units: int = 64
    num_layers: int = 2
    units_decay: float = 0.5
    embedding_dim: int = 32
    embedding_dropout: float = 0.0
    mask_zero: bool = False
    bidirectional: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    pooling: Pooling = "last"
    head_units: int = 16
    pretrained_embeddings: str | None = None
    embedding_trainable: bool = True

    def __post_init__(self):
        _require(self.cell in CELL_NAMES, "cell", self.cell,
                 f"one of {', '.join(CELL_NAMES)}")
        _require(self.units >= 1, "units", self.units, "an integer >= 1")
        _require(self.num_layers >= 1, "num_layers", self.num_layers,
                 "an integer >= 1")
        _require(0 < self.units_decay <= 1, "units_decay", self.units_decay,
                 "a number in (0, 1]")
        _require(self.embedding_dim >= 1, "embedding_dim",
                 self.embedding_dim, "an integer >= 1")
        _require(0 <= self.embedding_dropout < 1, "embedding_dropout",
                 self.embedding_dropout, "a number in [0, 1)")
        _require(0 <= self.dropout < 1, "dropout", self.dropout,
                 "a number in [0, 1)")
        _require(0 <= self.recurrent_dropout < 1, "recurrent_dropout",
                 self.recurrent_dropout, "a number in [0, 1)")
        _require(self.pooling in POOLING_NAMES, "pooling", self.pooling,
                 f"one of {', '.join(POOLING_NAMES)}")
        _require(self.head_units >= 0, "head_units", self.head_units,
                 "an integer >= 0 (0 for no hidden dense layer)")

    @property
    def layer_units(self) -> tuple[int, ...]:
        """Units of each recurrent layer, first to last."""
        return tuple(
            max(1, round(self.units * self.units_decay**i))
            for i in range(self.num_layers)
        )

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The recurrent layers' names, as the builder gives them."""
        return tuple(f"{self.cell}_{i}" for i in range(self.num_layers))


# What Keras asks of a GRU or LSTM layer before it runs the cuDNN kernel on
# a GPU; rnntune's builder fixes all but recurrent dropout (its layers use
# tanh, sigmoid gates, biases, reset_after, no unrolling), and its data is
# padded at the end, which is the only mask cuDNN takes.
CUDNN_FIXED = ("activation tanh", "recurrent_activation sigmoid",
               "use_bias", "unroll off", "GRU reset_after",
               "masks padded at the end")


def cudnn_layers(config: ModelConfig) -> list[dict]:
    """Whether each recurrent layer can take the cuDNN kernel on a GPU,
    and why not (plain Python: from the config alone).

    Returns:
        One `{"layer": name, "cudnn": bool, "why": text}` per recurrent
        layer, first to last.
    """
    if config.cell == "simple_rnn":
        why, ok = "SimpleRNN has no cuDNN kernel", False
    elif config.recurrent_dropout:
        why, ok = (f"recurrent_dropout={config.recurrent_dropout:g} "
                   "(cuDNN takes none)", False)
    else:
        why, ok = "meets " + ", ".join(CUDNN_FIXED), True
    return [{"layer": name, "cudnn": ok, "why": why}
            for name in config.layer_names]
