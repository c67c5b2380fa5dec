"""Held-out test accuracy of the presets, the mean of several seeds, beside
the published from-scratch numbers.

    python benchmarks/accuracy.py [--presets imdb,rotten_tomatoes]
                                  [--seeds 3] [--set KEY=VALUE ...]
                                  [--workdir DIR] [--quick] [--ensemble K]

Each preset trains `--seeds` times (`train.seed` 1, 2, ...; the splits
stay those of `data.seed`) through the one training path, `rnntune train`'s.
Each run picks its epoch on the validation split; the test split is
evaluated once, at the end, and chooses nothing. Printed per preset: test
accuracy (mean and standard deviation over the seeds), the best epochs,
the wall time of a run and the seconds per epoch (medians), then the
anchors and the goal. With `--ensemble K`, also the test accuracy of the
first K seeds' models averaged into one model (`tune --ensemble`'s
export); the seeds are not chosen among, so validation chooses nothing
here either.

The embedded IMDB data holds the 25,000 reviews of IMDB's official
training set only: rnntune's test split is 10 % of them (2,500 reviews),
not the official 25,000-review test set the anchors report. Rotten
Tomatoes (8,530 sentences) has no official split; the anchors are 10-fold
cross-validation means.

Runs are kept in `--workdir` (default a temporary directory) and reused
when the benchmark is run again with the same settings. `--quick` trains
on a 4,000-text sample for at most 3 epochs: it checks the benchmark in a
few minutes, and its figures are not comparable with the anchors.
"""

import argparse
import os
import pathlib
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tuning.trial.noise import QuietStderr  # noqa: E402

if __name__ == "__main__":  # before TensorFlow loads: its chatter goes
    QuietStderr()

from launch.common import USER_ERRORS  # noqa: E402
from launch.presets import get_preset  # noqa: E402
from tuning.trial.config import ConfigError, apply_overrides  # noqa: E402

ANCHORS = {
    "imdb": [("Dai & Le 2015, tuned LSTM", 86.5),
             ("Deep Learning with Python, LSTM(32), 500 tokens", 89.0),
             ("Deep Learning with Python, BiLSTM with masking", 87.5),
             ("Deep Learning with Python, bag-of-bigrams MLP", 90.0),
             ("NBSVM-bi (Wang & Manning 2012)", 91.2)],
    "rotten_tomatoes": [("CNN-rand (Kim 2014)", 76.1),
                        ("NBSVM-bi (Wang & Manning 2012)", 79.4)],
}
GOALS = {"imdb": 90.0, "rotten_tomatoes": 80.0}
# Of an ensemble of 3 models (`--ensemble 3`), test accuracy in %.
ENSEMBLE_GOALS = {"imdb": 90.5, "rotten_tomatoes": 78.5}
QUICK = ["data.max_examples=4000", "train.min_examples_seen=0"]


def run_preset(name: str, seeds: int, overrides: list[str],
               workdir: pathlib.Path, *, quick: bool) -> list:
    from tuning.trial.train import train_and_evaluate

    base = apply_overrides(get_preset(name), overrides)
    if quick:
        base = apply_overrides(base, [*QUICK, "train.epochs="
                                      f"{min(base.train.epochs, 3)}"])
    runs = []
    for seed in range(1, seeds + 1):
        config = apply_overrides(base, {"train.seed": seed})
        started = time.perf_counter()
        metrics = train_and_evaluate(config, workdir / f"{name}-seed{seed}",
                                     report=lambda line: None)
        runs.append(metrics)
        test, value = metrics.test_figure
        val = (f"best val RMSE {metrics.best_val_rmse:.4f}"
               if metrics.regression
               else f"best val accuracy {metrics.best_val_accuracy:.4f}")
        print(f"{name} seed {seed}: {test} {value:.4f}, {val} at epoch "
              f"{metrics.best_epoch}/{metrics.epochs_run}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return runs


def summary(name: str, runs: list, anchors=ANCHORS, goals=GOALS
            ) -> list[str]:
    """The preset's lines: test accuracy in % (a regression's test RMSE,
    in its targets' units, lower better) over the seeds, beside the
    anchors and the goal."""
    regression = runs[0].regression
    tests = [r.test_rmse if regression else 100 * r.test_accuracy
             for r in runs]
    unit = "" if regression else " %"
    spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
    mean = statistics.mean(tests)
    lines = [
        f"{name}: test {'RMSE' if regression else 'accuracy'} {mean:.2f}"
        f"{unit} +/- {spread:.2f} (mean, sd of {len(runs)} seed(s): "
        + ", ".join(f"{t:.2f}" for t in tests) + ")",
        "  best epochs " + ", ".join(str(r.best_epoch) for r in runs)
        + f"; median wall time "
        f"{statistics.median(r.wall_seconds for r in runs):.0f} s, "
        f"{statistics.median(r.seconds_per_epoch for r in runs):.1f} "
        "s per epoch",
    ]
    for anchor, figure in anchors.get(name, []):
        lines.append(f"  {figure:5.2f}{unit}  {anchor}")
    if name in goals:
        goal = goals[name]
        met = mean <= goal if regression else mean >= goal
        lines.append(f"  goal {'<=' if regression else '>='} {goal:.2f}"
                     f"{unit}: " + ("met" if met else
                                    f"not met ({mean - goal:+.2f})"))
    return lines


def main(argv=None, *, anchors=ANCHORS, goals=GOALS, doc=__doc__,
         presets="imdb,rotten_tomatoes", script="accuracy.py") -> int:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--presets", default=presets)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config key of every preset")
    parser.add_argument("--workdir", help="keep the runs here")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ensemble", type=int, default=0, metavar="K",
                        help="also test the average of the first K seeds' "
                        "models (one model, as `tune --ensemble` exports)")
    args = parser.parse_args(argv)
    if args.ensemble and not 2 <= args.ensemble <= args.seeds:
        parser.error(f"--ensemble {args.ensemble}: expected 2 to --seeds "
                     f"({args.seeds})")
    names = [n for n in args.presets.split(",") if n]
    try:  # a typo fails before hours of training
        for name in names:
            apply_overrides(get_preset(name), args.set)
    except ConfigError as e:
        parser.error(str(e))
    with tempfile.TemporaryDirectory() as scratch:
        workdir = pathlib.Path(args.workdir or scratch)
        try:  # e.g. a --workdir that holds runs of other settings
            results = {name: run_preset(name, args.seeds, args.set, workdir,
                                        quick=args.quick) for name in names}
            ensembles = {name: ensemble_figure(name, args.ensemble, workdir)
                         for name in names} if args.ensemble else {}
        except USER_ERRORS as e:
            parser.exit(2, f"{script}: error: {e}\n")
    print()
    if args.set:
        print("overrides: " + " ".join(args.set))
    for name, runs in results.items():
        print("\n".join(summary(name, runs, anchors, goals)))
        if name in ensembles:
            figure = ensembles[name]
            print(f"  ensemble of seeds 1 to {args.ensemble}: test "
                  + ("RMSE" if runs[0].regression else "accuracy")
                  + f" {figure:.2f}" + ("" if runs[0].regression else " %"))
            goal = ENSEMBLE_GOALS.get(name) if args.ensemble == 3 else None
            if goal is not None:
                print(f"  ensemble goal >= {goal:.1f} %: " + (
                    "met" if figure >= goal
                    else f"not met ({figure - goal:+.2f} points)"))
    return 0


def ensemble_figure(name: str, k: int, workdir: pathlib.Path) -> float:
    """Test accuracy in % (a regression's test RMSE) of the first `k`
    seeds' models averaged, as one exported model: each seed's runs chose
    their epoch on validation, and the average chooses nothing."""
    import keras

    import rnntune  # noqa: F401  registers what exported models hold
    from tuning.study.ensemble import ensemble_model, split_inputs
    from tuning.trial.evaluate import score_exported
    from tuning.trial.run import RunDir

    runs = [RunDir(workdir / f"{name}-seed{seed}")
            for seed in range(1, k + 1)]
    config = runs[0].read_config()
    models = {run.name: keras.models.load_model(run.model_path)
              for run in runs}
    path = workdir / f"{name}-ensemble{k}.keras"
    ensemble_model(models, list(models), regression=config.data.task
                   == "regression").save(path)
    figures = score_exported(
        path, split_inputs(config, "test"),
        num_classes=len((runs[0] / RunDir.LABELS).read_text().split()),
        label_smoothing=config.train.label_smoothing)
    if config.data.task == "regression":
        return figures["test_rmse"]
    return 100 * figures["test_accuracy"]


if __name__ == "__main__":
    raise SystemExit(main())
