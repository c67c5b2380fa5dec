"""The seed notebook's input against rnntune's pipeline, for the seed LSTM.

    python benchmarks/input_pipeline.py [--epochs 5] [--workdir DIR]

Both sides train the same model (the notebook's two-layer LSTM 64/32,
Dense 16, sigmoid; 10,000 tokens, 100 steps, batch 128, Adam) on the same
20,000 / 5,000 IMDB files, with the same initial weights:

- seed: `text_dataset_from_directory` (files read every epoch, uncached) and
  `TextVectorization` inside the model, run on every step;
- rnntune: `data_pipeline.VectorizedSplits` (every split vectorized once
  into token ids, then shuffle, batch, prefetch) feeding the model;
- no-input baseline: the same model on token-id batches already in memory,
  so its step time is the model's alone.

The three train one epoch each in turn (the order rotating), so that all
see the same machine: a shared machine's speed drifts over minutes.

Printed: seconds per epoch (epoch 1 includes tracing and, for rnntune,
adapting the vectorizer and vectorizing both splits), the ratio rnntune /
seed (steady: the median of each later round's ratio), validation
accuracy after the last epoch, and two views of input cost: the step time
over the no-input baseline (`1 - baseline step / step`, steady-state
epochs; for the seed it includes the in-model vectorization), and the
share of step time spent waiting in `next(iterator)` over one more epoch
of `train_on_batch`.
"""

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data_pipeline.config import DataConfig  # noqa: E402
from data_pipeline.pipeline import VectorizedSplits, vectorize  # noqa: E402
from data_pipeline.sources import Split, TextSplits, load_splits  # noqa: E402
from data_pipeline.text import standardize  # noqa: E402
from models.builder import build_model  # noqa: E402
from tuning.trial.config import apply_overrides  # noqa: E402
from launch.presets import get_preset  # noqa: E402

BATCH = 128
SEED = 123
MODEL = apply_overrides(get_preset("seed"), {"model.cell": "lstm"}).model


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds, self.steps, self.val_accuracy = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        # Validation is included, as in Keras' own epoch time.
        self.seconds.append(time.perf_counter() - self._t0)
        self.steps.append(self._steps)
        self.val_accuracy.append(float(logs["val_accuracy"]))


def write_imdb_tree(root: pathlib.Path) -> pathlib.Path:
    """The embedded IMDB reviews as aclImdb-style `train/{neg,pos}` files."""
    splits = load_splits(DataConfig(source="imdb", test_split=0,
                                    validation_split=0.2))
    texts = np.concatenate([splits.train.texts, splits.validation.texts])
    labels = np.concatenate([splits.train.labels, splits.validation.labels])
    for name in splits.class_names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (text, label) in enumerate(zip(texts, labels)):
        (root / splits.class_names[label] / f"{i}.txt").write_text(
            text, encoding="utf-8")
    return root


def compiled(model: keras.Model) -> keras.Model:
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def input_wait_share(model: keras.Model, dataset: tf.data.Dataset) -> float:
    """Share of one epoch's step time spent waiting in `next(iterator)`.

    A plain loop over `train_on_batch`, so the wait for each batch (with
    the pipeline's prefetching running meanwhile) is timed directly.
    """
    waiting = total = 0.0
    iterator = iter(dataset)
    while True:
        start = time.perf_counter()
        try:
            x, y = next(iterator)
        except StopIteration:
            break
        got = time.perf_counter()
        model.train_on_batch(x, y)
        waiting += got - start
        total += time.perf_counter() - start
    return waiting / total


def as_split(dataset: tf.data.Dataset) -> Split:
    """The texts and labels a `text_dataset_from_directory` subset holds."""
    texts, labels = [], []
    for text, label in dataset.unbatch().as_numpy_iterator():
        texts.append(text.decode("utf-8"))
        labels.append(label)
    return Split(texts=np.asarray(texts, dtype=object),
                 labels=np.asarray(labels, dtype=np.int32))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workdir", default=None,
                        help="where to write the review files (temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = write_imdb_tree(pathlib.Path(tmp) / "train")

        # The notebook, cell by cell.
        train_ds, val_ds = keras.utils.text_dataset_from_directory(
            root, batch_size=BATCH, validation_split=0.2, subset="both",
            seed=SEED, verbose=False)
        seed_vectorizer = keras.layers.TextVectorization(
            standardize=standardize, max_tokens=10000,
            output_mode="int", output_sequence_length=100)
        seed_vectorizer.adapt(train_ds.map(lambda x, y: x))
        keras.utils.set_random_seed(SEED)
        inner = build_model(MODEL, vocab_size=10000,
                            num_classes=2)
        initial = inner.get_weights()
        seed_model = compiled(keras.Sequential(
            [keras.Input(shape=(), dtype="string"), seed_vectorizer,
             *inner.layers[1:]]))

        # rnntune's pipeline over the very same files; vectorizing both
        # splits (and adapting) counts as part of its first epoch.
        train, validation = as_split(train_ds), as_split(val_ds)
        started = time.perf_counter()
        vectorized = VectorizedSplits.build(
            TextSplits(train, validation, None, ("neg", "pos"), "imdb"),
            max_tokens=10000, sequence_length=100)
        preparing = time.perf_counter() - started
        vectorizer = vectorized.vectorizer
        ours = build_model(MODEL, vocab_size=10000,
                           num_classes=2)
        ours.set_weights(initial)
        train_ids = vectorized.dataset("train", global_batch_size=BATCH,
                                       shuffle=True, seed=SEED)
        val_ids = vectorized.dataset("validation", global_batch_size=BATCH,
                                     shuffle=False, seed=SEED)

        # The model alone: batches already in memory.
        ids = vectorize(train.texts, vectorizer)
        steps = len(ids) // BATCH
        in_memory = tf.data.Dataset.from_tensor_slices((
            ids[:steps * BATCH].reshape(steps, BATCH, -1),
            train.labels[:steps * BATCH].reshape(steps, BATCH))).cache()
        bare = build_model(MODEL, vocab_size=10000,
                           num_classes=2)
        bare.set_weights(initial)

        # One epoch of each in turn, the order rotating every round, so
        # the three see the same machine (a shared machine's speed drifts
        # over minutes).
        sides = {"seed": (seed_model, train_ds, val_ds),
                 "rnntune": (compiled(ours), train_ids, val_ids),
                 "in-memory": (compiled(bare), in_memory, val_ids)}
        timers = {name: EpochTimer() for name in sides}
        for epoch in range(args.epochs):
            names = list(sides)
            for name in names[epoch % 3:] + names[:epoch % 3]:
                model, train_data, val_data = sides[name]
                model.fit(train_data, validation_data=val_data,
                          initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                          callbacks=[timers[name]])
        seed, rnntune, baseline = timers.values()
        rnntune.seconds[0] += preparing
        seed_wait = input_wait_share(seed_model, train_ds)
        rnntune_wait = input_wait_share(ours, train_ids)

    def per_step(timer):
        return statistics.median(
            s / n for s, n in zip(timer.seconds[1:], timer.steps[1:]))

    result = {
        "epochs": args.epochs,
        "train_examples": len(train), "validation_examples": len(validation),
        "seed_epoch_seconds": seed.seconds,
        "rnntune_epoch_seconds": rnntune.seconds,
        "baseline_epoch_seconds": baseline.seconds,
        "ratio_first_epoch": rnntune.seconds[0] / seed.seconds[0],
        # Median of the same rounds' ratios, epoch 1 (tracing) left out.
        "ratio_steady_epoch": statistics.median(
            r / s for r, s in zip(rnntune.seconds[1:], seed.seconds[1:])),
        "ratio_all_epochs": sum(rnntune.seconds) / sum(seed.seconds),
        "seed_val_accuracy": seed.val_accuracy[-1],
        "rnntune_val_accuracy": rnntune.val_accuracy[-1],
        "seed_input_share": 1 - per_step(baseline) / per_step(seed),
        "rnntune_input_share": 1 - per_step(baseline) / per_step(rnntune),
        "seed_input_wait": seed_wait,
        "rnntune_input_wait": rnntune_wait,
    }
    print(f"{'':10}{'epoch seconds':>30}  {'val acc':>8}")
    for name, timer in (("seed", seed), ("rnntune", rnntune),
                        ("in-memory", baseline)):
        times = " ".join(f"{s:6.2f}" for s in timer.seconds)
        print(f"{name:10}{times:>30}  {timer.val_accuracy[-1]:8.4f}")
    print(f"ratio rnntune/seed: first epoch {result['ratio_first_epoch']:.3f}"
          f", steady epoch {result['ratio_steady_epoch']:.3f}, all epochs "
          f"{result['ratio_all_epochs']:.3f}")
    print(f"step time over the in-memory baseline: seed "
          f"{result['seed_input_share']:.1%}, rnntune "
          f"{result['rnntune_input_share']:.1%}")
    print(f"step time waiting in next(iterator): seed "
          f"{result['seed_input_wait']:.1%}, rnntune "
          f"{result['rnntune_input_wait']:.1%}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
