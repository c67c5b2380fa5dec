"""Time to a target validation accuracy: rnntune's study against a plain
Keras Tuner RandomSearch over the same space.

    python benchmarks/tuning_speed.py [--targets 0.81 0.82 0.825]
        [--algorithms hyperband random] [--examples 0] [--max-epochs 10]
        [--budget 600] [--repeats 3] [--space cells] [--verbose]

Both search the same space on the same embedded IMDB data (`--examples 0`:
all 25,000 reviews, the seed preset's 18,000 / 4,500 / 2,500 split, 10,000
tokens, 100 steps, batch 128), on this machine, one after the other in
this process, with the same oracle seed:

- baseline: `keras_tuner.RandomSearch` with default settings, each trial a
  model that vectorizes strings inside itself on every step (the seed
  notebook's way; the vectorizer is adapted once, outside the search and
  outside its clock) and trains for `--max-epochs` epochs;
- rnntune, once per `--algorithms` entry: `rnntune tune --backend
  keras-tuner --algorithm A --max-epochs E` with in-trial early stopping
  (patience 1, best weights) and the study's shared vectorize-once data.
  With `random` and the same seed it samples the baseline's
  configurations in the baseline's order, so the difference is rnntune's
  alone; `hyperband` also changes which configurations run and for how
  long.

Each search runs until a trial reaches the highest target at an epoch end,
or `--budget` seconds have passed, whichever comes first. Printed per seed:
the seconds from the start of each search until the first epoch that
reaches each target; a search that has not reached a target within the
budget counts the budget (a lower bound, marked `>`). Then, per target,
the medians over seeds and their ratios rnntune / baseline (below 1:
rnntune is faster). Single runs hinge on which configurations happen to be
sampled first; compare medians, and read the ratio at several targets.
"""

import argparse
import json
import os
import pathlib
import re
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
from tuning.trial.config import apply_overrides  # noqa: E402
from tuning.backends.keras_tuner import hyperparameters  # noqa: E402
from tuning.study.space import get_space  # noqa: E402
from tuning.study.spec import StudySpec
from tuning.tune import run_study  # noqa: E402

# A trial's epoch line, as rnntune reports it.
EPOCH_LINE = re.compile(r"\] epoch \d+/\d+ .*\bval_accuracy ([0-9.]+|nan)")


class SearchOver(BaseException):
    """Ends a search: the last target reached or the budget spent. A
    BaseException, so neither Keras Tuner nor rnntune records it as a
    failed trial."""


class Clock:
    """Seconds to each target since the search started; ends the search
    once the highest target is reached or the budget is spent."""

    def __init__(self, name: str, targets: list[float], budget: float,
                 verbose: bool):
        self.name, self.targets, self.budget = name, targets, budget
        self.verbose = verbose
        self.started = time.time()
        self.reached: dict[float, float] = {}
        self.best = 0.0
        self.epochs = 0

    def epoch_end(self, val_accuracy: float) -> None:
        elapsed = time.time() - self.started
        self.epochs += 1
        if val_accuracy == val_accuracy:  # not NaN
            self.best = max(self.best, val_accuracy)
        for target in self.targets:
            if val_accuracy >= target and target not in self.reached:
                self.reached[target] = elapsed
        if self.verbose:
            print(f"  [{self.name}] val_accuracy {val_accuracy:.4f} at "
                  f"{elapsed:.0f}s", flush=True)
        if len(self.reached) == len(self.targets) or elapsed > self.budget:
            raise SearchOver

    def result(self) -> dict:
        return {"seconds_to_target": {
                    str(t): self.reached.get(t) for t in self.targets},
                "seconds": min(time.time() - self.started, self.budget),
                "best_val_accuracy": self.best, "epochs": self.epochs}


# Keras Tuner deep-copies callbacks (and what they hold) for each trial, so
# the clock lives at module level.
CLOCK: dict[str, Clock] = {}


class BaselineEpochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        CLOCK["baseline"].epoch_end(float(logs["val_accuracy"]))


def baseline(base, space, splits, args, directory, seed) -> dict:
    vectorizer = make_vectorizer(max_tokens=base.data.max_tokens,
                                 sequence_length=base.data.sequence_length,
                                 train_texts=splits.train.texts)

    def build(hp):
        values = {k: v for k, v in hp.values.items() if hp.is_active(k)}
        config = space.configure(base, values)
        inner = build_model(config.model, vocab_size=base.data.max_tokens,
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
                            max_trials=args.max_trials,
                            seed=seed + 1,  # as rnntune seeds its oracles
                            hyperparameters=hyperparameters(space),
                            directory=str(directory), project_name="base")
    clock = CLOCK["baseline"] = Clock("baseline", args.targets, args.budget,
                                      args.verbose)
    try:
        tuner.search(strings(splits.train),
                     validation_data=strings(splits.validation),
                     epochs=args.max_epochs, verbose=0,
                     callbacks=[BaselineEpochs()])
    except SearchOver:
        pass
    return clock.result()


def rnntune(base, space, args, workdir, seed, algorithm) -> dict:
    spec = StudySpec(base=apply_overrides(base, {
        "train.early_stopping_patience": 1}), space=space,
        backend="keras-tuner", algorithm=algorithm,
        max_trials=args.max_trials, max_epochs=args.max_epochs, seed=seed)
    clock = Clock(f"rnntune {algorithm}", args.targets, args.budget,
                  args.verbose)

    def report(line):
        match = EPOCH_LINE.search(line)
        if match:
            clock.epoch_end(float(match.group(1)))

    try:
        run_study(workdir, spec, report=report)
    except SearchOver:
        pass
    return clock.result()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=float, nargs="+",
                        default=[0.81, 0.82, 0.825])
    parser.add_argument("--examples", type=int, default=0,
                        help="reviews to use; 0: all 25,000")
    parser.add_argument("--max-trials", type=int, default=100,
                        help="trials at most (the budget usually ends a "
                        "search first)")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--budget", type=float, default=600,
                        help="seconds each search may run")
    parser.add_argument("--space", default="cells")
    parser.add_argument("--algorithms", nargs="+",
                        default=["hyperband", "random"],
                        choices=["hyperband", "random", "bayesian"],
                        help="rnntune's Keras Tuner algorithms to time")
    parser.add_argument("--repeats", type=int, default=3,
                        help="oracle seeds; medians are reported")
    parser.add_argument("--verbose", action="store_true",
                        help="print every epoch of both searches")
    args = parser.parse_args(argv)
    args.targets = sorted(args.targets)
    base = apply_overrides(get_preset("seed"), {
        "data.max_examples": args.examples})
    space = get_space(args.space)
    splits = load_splits(base.data)
    runs = []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            run = {"seed": seed}
            for algorithm in args.algorithms:
                run[f"rnntune {algorithm}"] = rnntune(
                    base, space, args, tmp / algorithm, seed, algorithm)
                keras.backend.clear_session()
            run["baseline"] = baseline(base, space, splits, args,
                                       tmp / "baseline", seed)
            keras.backend.clear_session()
        runs.append(run)

        def shown(result):
            return ", ".join(
                f"{t}: {'>%.0f' % args.budget if s is None else '%.0f' % s}"
                for t, s in result["seconds_to_target"].items())

        for name, result in run.items():
            if name != "seed":
                print(f"seed {seed}: {name}: seconds to target "
                      f"{shown(result)} (best "
                      f"{result['best_val_accuracy']:.4f}, "
                      f"{result['epochs']} epochs)", flush=True)

    def median(name, target):
        # Not reached within the budget: the budget, a lower bound.
        return statistics.median(
            r[name]["seconds_to_target"][str(target)] or args.budget
            for r in runs)

    summary = {}
    for target in args.targets:
        theirs = median("baseline", target)
        summary[str(target)] = {"baseline_median_seconds": theirs}
        line = [f"val_accuracy >= {target}: median seconds over "
                f"{args.repeats} seeds: Keras Tuner RandomSearch "
                f"{theirs:.0f}"]
        for algorithm in args.algorithms:
            ours = median(f"rnntune {algorithm}", target)
            summary[str(target)][algorithm] = {
                "median_seconds": ours, "ratio": ours / theirs}
            line.append(f"rnntune {algorithm} {ours:.0f} (ratio "
                        f"{ours / theirs:.2f})")
        print(", ".join(line))
    print(json.dumps({"args": vars(args), "runs": runs,
                      "summary": summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
