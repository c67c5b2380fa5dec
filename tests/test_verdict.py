"""Verdict rules on hand-made curves."""

import math

import pytest

from tuning.trial.verdict import judge


def curve(train_acc, val_acc, train_loss, val_loss):
    return [{"epoch": i + 1, "accuracy": a, "val_accuracy": va,
             "loss": loss, "val_loss": val_loss}
            for i, (a, va, loss, val_loss) in enumerate(zip(
                train_acc, val_acc, train_loss, val_loss))]


def test_clear_overfit_by_gap():
    rows = curve([0.7, 0.9, 0.99], [0.68, 0.7, 0.69], [0.6, 0.3, 0.05],
                 [0.6, 0.58, 0.59])
    word, reason = judge(rows, num_classes=2)
    assert word == "overfitting"
    assert "+0.3000 > 0.05" in reason


def test_overfit_by_rising_validation_loss():
    rows = curve([0.8, 0.82, 0.84], [0.8, 0.8, 0.8], [0.5, 0.4, 0.3],
                 [0.45, 0.5, 0.6])
    word, reason = judge(rows, num_classes=2)
    assert word == "overfitting"
    assert "rose from 0.450 (epoch 1) to 0.600" in reason


def test_underfit_near_chance():
    rows = curve([0.5, 0.52], [0.5, 0.5], [0.69, 0.69], [0.69, 0.69])
    assert judge(rows, num_classes=2)[0] == "underfitting"
    three = curve([0.40, 0.41], [0.40, 0.40], [1.0, 1.0], [1.0, 1.0])
    assert judge(three, num_classes=3)[0] == "underfitting"


def test_healthy():
    rows = curve([0.7, 0.8, 0.85], [0.7, 0.79, 0.83], [0.6, 0.45, 0.38],
                 [0.6, 0.46, 0.40])
    assert judge(rows, num_classes=2)[0] == "healthy"


def test_nan_is_diverged():
    rows = curve([0.7, 0.5], [0.7, 0.5], [0.6, math.nan], [0.6, math.nan])
    word, reason = judge(rows, num_classes=2)
    assert word == "diverged"
    assert "epoch 2" in reason
    assert judge([], num_classes=2)[0] == "diverged"


def test_overfit_onset_and_gap_slope():
    from tuning.trial.verdict import analyze, gap_slope, overfit_onset

    rows = curve([0.7, 0.8, 0.9, 0.95], [0.7, 0.76, 0.74, 0.72],
                 [0.6, 0.4, 0.3, 0.2], [0.55, 0.5, 0.56, 0.6])
    assert overfit_onset(rows) == 3  # the gap stays above 0.05 from here
    assert gap_slope(rows) == pytest.approx((0.23 - 0.04) / 2)
    figures = analyze(rows, num_classes=2)
    assert figures["best_epoch"] == 2
    assert figures["accuracy_gap_at_best"] == pytest.approx(0.04)
    assert figures["final_accuracy_gap"] == pytest.approx(0.23)
    assert figures["verdict"] == "overfitting"
    # Still improving: no onset.
    healthy = curve([0.7, 0.8], [0.7, 0.79], [0.6, 0.45], [0.6, 0.46])
    assert overfit_onset(healthy) is None
    assert math.isnan(gap_slope(healthy[:1]))


def test_onset_and_verdict_never_disagree():
    from tuning.trial.verdict import analyze, overfit_onset

    # Validation loss alone gives it away: the epoch after its minimum.
    by_loss = curve([0.8, 0.82, 0.84], [0.8, 0.8, 0.8], [0.5, 0.4, 0.3],
                    [0.45, 0.5, 0.6])
    assert overfit_onset(by_loss) == 2
    # Validation loss rises here too, but the run underfits (and a gap
    # that closed again is no overfitting either): no onset.
    underfit = curve([0.52, 0.55, 0.58], [0.5, 0.5, 0.5], [0.69, 0.68, 0.6],
                     [0.6, 0.69, 0.7])
    closed = curve([0.7, 0.9, 0.85], [0.7, 0.8, 0.83], [0.6, 0.4, 0.35],
                   [0.6, 0.5, 0.45])
    for rows, word in ((underfit, "underfitting"), (closed, "healthy")):
        figures = analyze(rows, num_classes=2)
        assert figures["verdict"] == word
        assert figures["overfit_onset_epoch"] is None


def regression_curve(train_loss, val_loss):
    nan = math.nan
    return [{"epoch": i + 1, "accuracy": nan, "val_accuracy": nan,
             "loss": loss, "val_loss": val}
            for i, (loss, val) in enumerate(zip(train_loss, val_loss))]


def test_a_regression_is_judged_on_its_loss():
    from tuning.trial.verdict import analyze, overfit_onset

    # Train-mean predictor's loss 100: a train loss of 95 learned little.
    word, reason = judge(regression_curve([120, 98, 95], [121, 99, 96]),
                         num_classes=0, baseline_loss=100)
    assert word == "underfitting"
    assert "R^2 0.050 < 0.10" in reason
    # Validation loss 1.8 times the training loss: a gap of +0.80.
    rows = regression_curve([50, 20, 10, 5], [52, 25, 12, 9])
    word, reason = judge(rows, num_classes=0, baseline_loss=100)
    assert word == "overfitting"
    assert "validation / train loss - 1 +0.8000 > 0.5" in reason
    assert overfit_onset(rows, num_classes=0, baseline_loss=100) == 4
    word, _ = judge(regression_curve([50, 20, 10], [52, 22, 12]),
                    num_classes=0, baseline_loss=100)
    assert word == "healthy"
    figures = analyze(rows, num_classes=0, objective="val_loss",
                      baseline_loss=100)
    assert figures["final_gap"] == pytest.approx(0.8)
    assert math.isnan(figures["final_accuracy_gap"])
    # Without a baseline, no underfitting rule: judged on the gap alone.
    word, _ = judge(regression_curve([120, 98, 95], [121, 99, 96]),
                    num_classes=0)
    assert word == "healthy"
