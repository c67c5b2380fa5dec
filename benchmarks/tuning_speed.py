"""Time to a target validation accuracy: rnntune's study against a plain
Keras Tuner RandomSearch over the same space.

    python benchmarks/tuning_speed.py [--target 0.80] [--examples 10000]
        [--max-trials 12] [--max-epochs 6] [--space cells]

Both search the same space on the same embedded IMDB sample, on this
machine, one after the other in this process:

- baseline: `keras_tuner.RandomSearch` with default settings, each trial a
  model that vectorizes strings inside itself on every step (the seed
  notebook's way; the vectorizer is adapted once, outside the search) and
  trains for `--max-epochs` epochs;
- rnntune: `rnntune tune --backend keras-tuner --algorithm hyperband` with
  in-trial early stopping (patience 1) and the shared, vectorize-once
  pipeline.

Printed: the wall time from the start of each search until a trial first
reaches `--target` validation accuracy (at an epoch end), the ratio
rnntune / baseline, and each search's total time.
"""

import argparse
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import tensorflow as tf  # noqa: E402

from data_pipeline.sources import load_splits  # noqa: E402
from data_pipeline.text import make_vectorizer  # noqa: E402
from launch.presets import get_preset  # noqa: E402
from models.builder import build_model  # noqa: E402
from tuning.config import apply_overrides  # noqa: E402
from tuning.kt_backend import hyperparameters  # noqa: E402
from tuning.space import get_space  # noqa: E402
from tuning.study import StudySpec  # noqa: E402
from tuning.trial import read_history  # noqa: E402
from tuning.tune import run_study  # noqa: E402


class TargetReached(BaseException):
    """Ends the baseline search (Keras Tuner swallows plain exceptions)."""


class TargetTimer(keras.callbacks.Callback):
    def __init__(self, target, started):
        super().__init__()
        self.target, self.started = target, started
        self.best = 0.0

    def on_epoch_end(self, epoch, logs=None):
        self.best = max(self.best, logs["val_accuracy"])
        if logs["val_accuracy"] >= self.target:
            raise TargetReached(time.time() - self.started)


def baseline(base, space, splits, args, directory
             ) -> tuple[float, float, float]:
    vectorizer = make_vectorizer(max_tokens=base.data.max_tokens,
                                 sequence_length=base.data.sequence_length,
                                 train_texts=splits.train.texts)

    def build(hp):
        values = {k: v for k, v in hp.values.items() if hp.is_active(k)}
        config = space.configure(base, values)
        inner = build_model(config.model, vocab_size=base.data.max_tokens,
                            sequence_length=base.data.sequence_length,
                            num_classes=2)
        model = keras.Sequential([keras.Input(shape=(), dtype="string"),
                                  vectorizer, inner])
        model.compile(optimizer=keras.optimizers.Adam(
            config.train.learning_rate), loss="binary_crossentropy",
            metrics=["accuracy"])
        return model

    def strings(split):
        return tf.data.Dataset.from_tensor_slices(
            (split.texts, split.labels)).shuffle(len(split), seed=0).batch(
                base.train.batch_size)

    tuner = kt.RandomSearch(build, objective="val_accuracy",
                            max_trials=args.max_trials, seed=0,
                            hyperparameters=hyperparameters(space),
                            directory=str(directory), project_name="base")
    started = time.time()
    timer = TargetTimer(args.target, started)
    try:
        tuner.search(strings(splits.train),
                     validation_data=strings(splits.validation),
                     epochs=args.max_epochs, verbose=0, callbacks=[timer])
    except TargetReached as reached:
        return float(reached.args[0]), time.time() - started, timer.best
    return float("nan"), time.time() - started, timer.best


def rnntune(base, space, args, workdir) -> tuple[float, float, float]:
    spec = StudySpec(base=apply_overrides(base, {
        "train.early_stopping_patience": 1}), space=space,
        backend="keras-tuner", algorithm="hyperband",
        max_trials=args.max_trials, max_epochs=args.max_epochs)
    started = time.time()
    run_study(workdir, spec, report=lambda _: None)
    total = time.time() - started
    rows = [row for d in (workdir / "trials").iterdir()
            for row in read_history(d / "history.csv")]
    hits = [r["ended_at"] - started for r in rows
            if r["val_accuracy"] >= args.target]
    best = max(r["val_accuracy"] for r in rows)
    return (min(hits) if hits else float("nan")), total, best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", type=float, default=0.80)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--space", default="cells")
    args = parser.parse_args(argv)
    base = apply_overrides(get_preset("seed"), {
        "data.max_examples": args.examples})
    space = get_space(args.space)
    splits = load_splits(base.data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        ours, ours_total, ours_best = rnntune(base, space, args,
                                              tmp / "rnntune")
        keras.backend.clear_session()
        theirs, theirs_total, theirs_best = baseline(
            base, space, splits, args, tmp / "baseline")
    result = {"target": args.target, "examples": args.examples,
              "max_trials": args.max_trials, "max_epochs": args.max_epochs,
              "rnntune_seconds_to_target": ours,
              "baseline_seconds_to_target": theirs,
              "ratio": ours / theirs,
              "rnntune_total_seconds": ours_total,
              "baseline_seconds_until_stop": theirs_total,
              "rnntune_best_val_accuracy": ours_best,
              "baseline_best_val_accuracy": theirs_best}
    print(f"seconds to val_accuracy >= {args.target}: rnntune {ours:.0f}, "
          f"Keras Tuner RandomSearch {theirs:.0f}, ratio "
          f"{result['ratio']:.2f}")
    print(f"whole search: rnntune {ours_total:.0f} s (best val accuracy "
          f"{ours_best:.4f}), baseline {theirs_total:.0f} s until it "
          f"stopped (best {theirs_best:.4f})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
