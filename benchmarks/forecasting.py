"""Held-out test figures of the forecasting presets, the mean of several
seeds, beside the trivial forecasts on the same test windows and the
published figures.

    python benchmarks/forecasting.py [--presets airline,m1_yearly]
                                     [--seeds 3] [--set KEY=VALUE ...]
                                     [--workdir DIR] [--quick]

Each preset trains `--seeds` times (`train.seed` 1, 2, ...) through the
one training path, `rnntune train`'s. The test span is the last horizon
of each series (airline: the last 36 months, forecast at once from the 24
before; M1 yearly: the last 6 years of each of 181 series); each run picks
its epoch on the validation span just before it, and the test span is
evaluated once, at the end, choosing nothing. Printed per preset: MAE,
RMSE, MAPE, sMAPE and MASE (mean and standard deviation over the seeds),
the naive, seasonal-naive and drift forecasts' on the same windows, the
anchors and the goals. `--quick` trains at most 3 epochs: it checks the
script in seconds.
"""

import argparse
import os
import pathlib
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tuning.trial.noise import QuietStderr  # noqa: E402

if __name__ == "__main__":  # before TensorFlow loads: its chatter goes
    QuietStderr()

from accuracy import run_preset  # noqa: E402

from launch.common import USER_ERRORS  # noqa: E402
from launch.presets import get_preset  # noqa: E402
from tuning.trial.config import ConfigError, apply_overrides  # noqa: E402
from tuning.trial.run import FORECAST_FIGURES  # noqa: E402

# Published test figures on the same split: (name, MAPE %, MASE).
ANCHORS = {
    # Darts' quickstart: the last 36 months held out, forecast at once.
    "airline": [("Darts ExponentialSmoothing", 5.11, None),
                ("Darts Theta, tuned", 4.40, None)],
    "m1_yearly": [],
}
# (figure, bound): airline MAPE at most 5 % and MASE below the seasonal
# naive's; M1 yearly MASE below the drift forecast's.
GOALS = {"airline": [("mape", 5.0), ("mase", "seasonal_naive")],
         "m1_yearly": [("mase", "drift")]}


def _mean_sd(values: list[float]) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4g} ± {sd:.1g}"


def summary(name: str, runs: list) -> list[str]:
    """The preset's table: the model's figures (mean ± sd over seeds),
    then each trivial forecast's, then the anchors and the goals."""
    figures = {f: [getattr(r, f"test_{f}") for r in runs]
               for f in FORECAST_FIGURES}
    baselines = runs[0].test_baselines
    width = max(len(b) for b in baselines) + 2
    lines = [f"{name}: {len(runs)} seed(s), best epochs "
             f"{[r.best_epoch for r in runs]}, "
             f"{statistics.median(r.wall_seconds for r in runs):.0f} s a run",
             f"  {'':<{width}}" + "".join(f"{f.upper():>20}"
                                         for f in FORECAST_FIGURES),
             f"  {'model':<{width}}" + "".join(
                 f"{_mean_sd(v):>20}" for v in figures.values())]
    for baseline, values in baselines.items():
        lines.append(f"  {baseline:<{width}}" + "".join(
            f"{values[f]:>20.4g}" for f in FORECAST_FIGURES))
    for anchor, mape, mase in ANCHORS.get(name, []):
        lines.append(f"  anchor {anchor}: MAPE {mape:.2f} %"
                     + (f", MASE {mase:.3f}" if mase else ""))
    for figure, bound in GOALS.get(name, []):
        mean = statistics.fmean(figures[figure])
        if isinstance(bound, str):  # below a trivial forecast's
            limit = baselines[bound][figure]
            met = mean < limit
            what = f"< {bound}'s {limit:.5g}"
        else:
            limit, met, what = bound, mean <= bound, f"<= {bound:g}"
        lines.append(f"  goal {figure.upper()} {what}: "
                     + ("met" if met else "NOT met") + f" ({mean:.5g})")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(ANCHORS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config key of every preset")
    parser.add_argument("--workdir", help="keep the runs here")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    names = [n for n in args.presets.split(",") if n]
    try:  # a typo fails before the training
        for name in names:
            if get_preset(name).data.task != "forecast":
                parser.error(f"--presets: {name} is not a forecasting "
                             "preset")
            apply_overrides(get_preset(name), args.set)
    except ConfigError as e:
        parser.error(str(e))
    with tempfile.TemporaryDirectory() as scratch:
        workdir = pathlib.Path(args.workdir or scratch)
        try:
            results = {name: run_preset(name, args.seeds, args.set, workdir,
                                        quick=args.quick) for name in names}
        except USER_ERRORS as e:
            parser.exit(2, f"forecasting.py: error: {e}\n")
    print()
    if args.set:
        print("overrides: " + " ".join(args.set))
    for name, runs in results.items():
        print("\n".join(summary(name, runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
