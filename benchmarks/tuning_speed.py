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

Printed, for each of `--repeats` seeds (both searches use the seed): the
wall time from the start of each search until a trial first reaches
`--target` validation accuracy at an epoch end (a search that never does
counts its whole time), then the medians and their ratio rnntune /
baseline. Single runs are dominated by which configuration happens to be
sampled first; compare medians.
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


# Keras Tuner deep-copies callbacks (and what they hold) for each trial, so
# the best accuracy seen lives at module level.
SEEN = {"best": 0.0}


class TargetTimer(keras.callbacks.Callback):
    def __init__(self, target, started):
        super().__init__()
        self.target, self.started = target, started

    def on_epoch_end(self, epoch, logs=None):
        SEEN["best"] = max(SEEN["best"], logs["val_accuracy"])
        if logs["val_accuracy"] >= self.target:
            raise TargetReached(time.time() - self.started)


def baseline(base, space, splits, args, directory, seed
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
                            max_trials=args.max_trials, seed=seed,
                            hyperparameters=hyperparameters(space),
                            directory=str(directory), project_name="base")
    started = time.time()
    SEEN["best"] = 0.0
    try:
        tuner.search(strings(splits.train),
                     validation_data=strings(splits.validation),
                     epochs=args.max_epochs, verbose=0,
                     callbacks=[TargetTimer(args.target, started)])
    except TargetReached as reached:
        return float(reached.args[0]), time.time() - started, SEEN["best"]
    return float("nan"), time.time() - started, SEEN["best"]


def rnntune(base, space, args, workdir, seed
            ) -> tuple[float, float, float]:
    spec = StudySpec(base=apply_overrides(base, {
        "train.early_stopping_patience": 1}), space=space,
        backend="keras-tuner", algorithm="hyperband",
        max_trials=args.max_trials, max_epochs=args.max_epochs, seed=seed)
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
    parser.add_argument("--repeats", type=int, default=3,
                        help="search seeds; medians are reported")
    args = parser.parse_args(argv)
    base = apply_overrides(get_preset("seed"), {
        "data.max_examples": args.examples})
    space = get_space(args.space)
    splits = load_splits(base.data)
    runs = []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            ours = rnntune(base, space, args, tmp / "rnntune", seed)
            keras.backend.clear_session()
            theirs = baseline(base, space, splits, args, tmp / "baseline",
                              seed)
            keras.backend.clear_session()
        runs.append({"seed": seed, "rnntune": ours, "baseline": theirs})
        print(f"seed {seed}: seconds to target rnntune {ours[0]:.0f} "
              f"(search {ours[1]:.0f}, best {ours[2]:.4f}), baseline "
              f"{theirs[0]:.0f} (stopped at {theirs[1]:.0f}, best "
              f"{theirs[2]:.4f})", flush=True)

    def to_target(run):
        # A search that never reached the target counts its whole time (a
        # lower bound on its time to target).
        seconds, total, _ = run
        return seconds if seconds == seconds else total

    ours = statistics.median(to_target(r["rnntune"]) for r in runs)
    theirs = statistics.median(to_target(r["baseline"]) for r in runs)
    result = {"target": args.target, "examples": args.examples,
              "max_trials": args.max_trials, "max_epochs": args.max_epochs,
              "repeats": args.repeats, "runs": runs,
              "rnntune_median_seconds_to_target": ours,
              "baseline_median_seconds_to_target": theirs,
              "ratio": ours / theirs}
    print(f"median seconds to val_accuracy >= {args.target} over "
          f"{args.repeats} seeds: rnntune {ours:.0f}, Keras Tuner "
          f"RandomSearch {theirs:.0f}, ratio {result['ratio']:.2f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
