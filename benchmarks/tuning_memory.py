"""Resident memory across the trials of one Keras Tuner study.

    python benchmarks/tuning_memory.py [--trials 20]

Runs a study of small trials in this process and reads the process's
resident set size after each trial ends. Printed: RSS per trial and the
growth from the end of trial 2 to the end of the last, in percent (users
of Keras Tuner, Optuna and Ray report growth across TensorFlow trials;
rnntune clears the Keras session before each trial).
"""

import argparse
import json
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from launch.presets import get_preset  # noqa: E402
from tuning.backends import keras_tuner  # noqa: E402
from tuning.study import hparams  # noqa: E402
from tuning.trial.config import apply_overrides  # noqa: E402
from tuning.study.recorder import TrialRecorder  # noqa: E402
from tuning.study.runner import TrialTrainer  # noqa: E402
from tuning.trial.run import StudyDir  # noqa: E402
from tuning.study.space import from_dict, get_space  # noqa: E402

# Same-size models in every trial, so growth is leakage, not a larger
# model sampled late.
SAME_SIZE = {"model.cell": {"choice": ["lstm"]},
             "train.learning_rate": {"float": [1e-4, 1e-2], "log": True},
             "model.dropout": {"float": [0.0, 0.5]}}
from tuning.study.results import ResultsTable  # noqa: E402
from tuning.study.spec import StudySpec  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--space", default=None,
                        help="a named space instead of same-size trials")
    args = parser.parse_args(argv)
    base = apply_overrides(get_preset("smoke"), {
        "train.early_stopping_patience": 0})
    space = (get_space(args.space) if args.space
             else from_dict(SAME_SIZE, name="same-size"))
    spec = StudySpec(base=base, space=space,
                     backend="keras-tuner", algorithm="random",
                     max_trials=args.trials, max_epochs=2)
    samples = []

    def record(trial_id, event):
        if event != "started":
            samples.append(rss_mib())
            print(f"trial {trial_id}: {event}, RSS {samples[-1]:.0f} MiB",
                  flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        hparams.write_experiment(workdir, spec.space)
        table = ResultsTable(workdir, spec.space)
        study = StudyDir(workdir)
        keras_tuner.search(
            TrialRecorder(study, spec, table, on_event=record),
            TrialTrainer(study, spec, report=lambda _: None))
    growth = samples[-1] / samples[1] - 1
    print(f"RSS after trial 2: {samples[1]:.0f} MiB, after trial "
          f"{len(samples)}: {samples[-1]:.0f} MiB, growth {growth:+.1%}")
    print(json.dumps({"trials": len(samples), "rss_mib": samples,
                      "growth_after_trial_2": growth}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
