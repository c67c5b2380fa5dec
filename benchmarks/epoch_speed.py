"""Length bucketing against fixed padding: seconds per epoch, side by side.

    python benchmarks/epoch_speed.py [--epochs 2] [--lengths 200,500]
                                     [--cells gru,lstm] [--quick]

For each cell (a masked model, `MODEL`: 20,000 tokens, embedding 64, 64
units, last state, dropout 0.3, batch 64, Adam) and each sequence length, two
copies of one model with the same initial weights train on the full
embedded IMDB (18,000 / 4,500 reviews, vectorized once): one on batches
padded to the full length, one on batches bucketed by length
(`data.bucket_by_length`). They train one epoch each in turn, the order
alternating, so that both see the same machine (a shared machine's speed
drifts over minutes).

Printed per cell and length: seconds per epoch of each (validation
included; the first epoch also traces the graph, once per padded length
for the bucketed side), the ratio bucketed / fixed (the median over the
epochs after the first, or the first alone), the token fill of each (real
tokens over padded steps: fixed padding's is the ratio's floor, the
bucketed side's the steps it still spends on padding) and the validation
accuracy of both after the last epoch (equal within noise: masking makes
padding invisible to the model). `--quick` trains on 4,000 reviews, one
epoch, at 500 tokens only.
"""

import argparse
import dataclasses
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from data_pipeline.config import DataConfig  # noqa: E402
from data_pipeline.pipeline import (  # noqa: E402
    VectorizedSplits, bucketed_batches, bucketed_epoch, text_lengths)
from data_pipeline.sources import load_splits  # noqa: E402
from models.builder import build_model  # noqa: E402
from models.config import ModelConfig  # noqa: E402
from tuning.trial.config import Config, TrainConfig  # noqa: E402
from tuning.trial.optimization import OPTIMIZERS  # noqa: E402

SIDES = ("fixed", "bucketed")
# What the figures in the README's Speed section were measured on.
MODEL = Config(
    data=DataConfig(source="imdb", max_tokens=20000, sequence_length=200),
    model=ModelConfig(cell="gru", units=64, num_layers=1, embedding_dim=64,
                      mask_zero=True, dropout=0.3, head_units=16),
    train=TrainConfig(batch_size=64, learning_rate=1e-3))


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds, self.val_accuracy = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t0)
        self.val_accuracy.append(float(logs["val_accuracy"]))


def compiled(config, vocab_size: int) -> keras.Model:
    model = build_model(config.model, vocab_size=vocab_size, num_classes=2)
    model.compile(optimizer=OPTIMIZERS[config.train.optimizer](
        learning_rate=config.train.learning_rate),
        loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fill(ids: np.ndarray, padded_steps: int) -> float:
    return int(text_lengths(ids).sum()) / padded_steps


def bucketed_steps(ids: np.ndarray, bounds, batch_size: int) -> int:
    """Padded steps of one bucketed epoch (rows x their batch's length)."""
    return sum(len(rows) * length for rows, length in bucketed_epoch(
        text_lengths(ids), bounds, batch_size, None))


def measure(cell: str, length: int, splits, *, epochs: int) -> dict:
    config = dataclasses.replace(
        MODEL, data=dataclasses.replace(MODEL.data, sequence_length=length),
        model=dataclasses.replace(MODEL.model, cell=cell))
    vectorized = VectorizedSplits.build(
        splits, max_tokens=config.data.max_tokens, sequence_length=length)
    batch = config.train.batch_size
    keras.utils.set_random_seed(config.train.seed)
    models = {side: compiled(config, vectorized.vectorizer.vocabulary_size())
              for side in SIDES}
    models["bucketed"].set_weights(models["fixed"].get_weights())
    data = {side: {name: vectorized.dataset(
        name, global_batch_size=batch, shuffle=name == "train",
        seed=config.data.seed, bucket=side == "bucketed")
        for name in ("train", "validation")} for side in SIDES}
    timers = {side: EpochTimer() for side in SIDES}
    for epoch in range(epochs):
        order = SIDES if epoch % 2 == 0 else SIDES[::-1]
        for side in order:
            models[side].fit(data[side]["train"],
                             validation_data=data[side]["validation"],
                             initial_epoch=epoch, epochs=epoch + 1,
                             callbacks=[timers[side]], shuffle=False,
                             verbose=0)
    ids = vectorized.ids["train"]
    bounds = vectorized.bucket_bounds
    fixed, bucketed = (timers[side].seconds for side in SIDES)
    ratios = [b / f for f, b in zip(fixed, bucketed)]
    return {
        "cell": cell, "length": length, "fixed": fixed,
        "bucketed": bucketed,
        "ratio": statistics.median(ratios[1:] or ratios),
        "fill_fixed": fill(ids, ids.size),
        "fill_bucketed": fill(ids, bucketed_steps(ids, bounds, batch)),
        "batches": (-(-len(ids) // batch),
                    bucketed_batches(text_lengths(ids), bounds, batch)),
        "bounds": bounds,
        "val_fixed": timers["fixed"].val_accuracy[-1],
        "val_bucketed": timers["bucketed"].val_accuracy[-1],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lengths", default="200,500")
    parser.add_argument("--cells", default="gru,lstm")
    parser.add_argument("--quick", action="store_true",
                        help="4,000 reviews, one epoch, 500 tokens")
    args = parser.parse_args(argv)
    data = MODEL.data
    if args.quick:
        data = dataclasses.replace(data, max_examples=4000)
        args.epochs, args.lengths = 1, "500"
    splits = load_splits(data)
    print(f"{len(splits.train)} training / {len(splits.validation)} "
          f"validation reviews, {args.epochs} epoch(s) per side, "
          "interleaved", flush=True)
    rows = []
    for cell in args.cells.split(","):
        for length in (int(x) for x in args.lengths.split(",")):
            row = measure(cell, length, splits, epochs=args.epochs)
            rows.append(row)
            print(f"{cell} {length}: fixed "
                  f"{' '.join(f'{s:.1f}' for s in row['fixed'])} s, "
                  f"bucketed {' '.join(f'{s:.1f}' for s in row['bucketed'])}"
                  f" s; bounds {list(row['bounds'])}", flush=True)
    print()
    header = ("cell", "length", "fixed s/ep", "bucketed s/ep",
              "bucketed/fixed", "fill fixed", "fill bucketed",
              "batches f/b", "val acc fixed", "val acc bucketed")
    lines = [header] + [(
        r["cell"], str(r["length"]),
        f"{statistics.median(r['fixed'][1:] or r['fixed']):.1f}",
        f"{statistics.median(r['bucketed'][1:] or r['bucketed']):.1f}",
        f"{r['ratio']:.2f}", f"{r['fill_fixed']:.2f}",
        f"{r['fill_bucketed']:.2f}", f"{r['batches'][0]}/{r['batches'][1]}",
        f"{r['val_fixed']:.4f}", f"{r['val_bucketed']:.4f}") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    print("\ngoal at 500 tokens: bucketed / fixed <= 0.55")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
