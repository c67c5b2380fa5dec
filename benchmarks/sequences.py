"""Held-out test accuracy of the numeric-series presets (test RMSE of
the regression one), the mean of several seeds, beside the UCR/UEA
archive's published results and, for the regression, the predictor of
the training targets' mean.

    python benchmarks/sequences.py
        [--presets japanese_vowels,basic_motions,tecator]
        [--seeds 3] [--set KEY=VALUE ...] [--workdir DIR] [--quick]

Each preset trains `--seeds` times (`train.seed` 1, 2, ...) through the one
training path, `rnntune train`'s, on the archive's own train / test split:
validation is carved from the training series only, each run picks its
epoch on it, and the shipped test series are evaluated once, at the end,
choosing nothing. The series stay ragged (JapaneseVowels: 7 to 29 steps),
masked from their lengths, never resampled. Printed as `accuracy.py`
prints the text presets: test accuracy (for `tecator`, test RMSE in fat
percentage points; mean and standard deviation over the seeds), best
epochs, wall time, then the anchors and the goal.
`--quick` trains at most 3 epochs: it checks the script in seconds.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tuning.trial.noise import QuietStderr  # noqa: E402

if __name__ == "__main__":  # before TensorFlow loads: its chatter goes
    QuietStderr()

from accuracy import main as accuracy_main  # noqa: E402

# Test accuracy, %, on the archive's split (Ruiz et al. 2021, "The great
# multivariate time series classification bake off"; Middlehurst et al.
# 2024, "Bake off redux"; the echo-state result from aeon's benchmarks).
ANCHORS = {
    "japanese_vowels": [("TWIESN (echo-state network)", 97.0),
                        ("MiniRocket, ragged series", 98.7),
                        ("InceptionTime", 99.2)],
    "basic_motions": [("InceptionTime", 100.0)],
    # Test RMSE, fat %: predicting the training targets' mean for every
    # test sample (computed from the shipped split).
    "tecator": [("train-mean predictor", 12.89)],
}
# Accuracy at least, in %; a regression's RMSE at most (a fifth of the
# train-mean predictor's).
GOALS = {"japanese_vowels": 98.5, "basic_motions": 100.0, "tecator": 2.58}


def main(argv=None) -> int:
    return accuracy_main(argv, anchors=ANCHORS, goals=GOALS, doc=__doc__,
                         presets=",".join(ANCHORS), script="sequences.py")


if __name__ == "__main__":
    raise SystemExit(main())
