"""The stand-in trial function: `fake_trial` trains nothing.

It plugs into `TrialTrainer`'s seam in place of
`tuning.trial.train.train_and_evaluate` and writes what a trial writes
(history, training state, `RunMetrics`, a model file) from a made-up
curve, in milliseconds, honouring resume, early stopping and the epoch
hooks the backends pass. Search, scheduling, failure and table logic is
tested with it; real end-to-end studies run in the slow tier.

Ray's workers cannot import the tests' modules: a test module that runs
it under Ray registers this module with `cloudpickle` by value.
"""

import json
import math
import pathlib
import tempfile
import time


def fake_curve(config, epoch: int) -> dict:
    """A made-up epoch of `config`: validation accuracy rises with the
    units and the learning rate, then falls a little (it overfits), and
    moves a little with the seed; a learning rate of 1 or more diverges (a
    NaN loss)."""
    lr, units = config.train.learning_rate, config.model.units
    if lr >= 1:
        return {"loss": math.nan, "accuracy": 0.5, "val_loss": math.nan,
                "val_accuracy": 0.5}
    ceiling = 0.6 + 0.3 * units / (units + 8) + 0.01 * (
        config.model.cell == "lstm")
    rise = 1 - math.exp(-epoch * min(lr, 0.1) * 300)
    luck = 0.002 * ((config.train.seed * 7919) % 11 - 5)
    val = 0.5 + (ceiling - 0.5) * rise - 0.004 * max(0, epoch - 2) + luck
    train = min(0.99, val + 0.02 * epoch)
    return {"loss": 1 - train, "accuracy": train, "val_loss": 1.2 - val,
            "val_accuracy": val}


def fake_trial(config, workdir, *, report, epoch_hooks=(),
               keep_state=False, evaluate_test=True):
    """A trial function that trains nothing (see the module docstring).

    Returns:
        The run's `RunMetrics`, as `train_and_evaluate` returns them.
    """
    from data_pipeline.sources import load_splits
    from tuning.trial.run import RunDir
    from tuning.trial.state import TrainingState
    from tuning.trial.workdir import finished_metrics

    run = RunDir(workdir)
    finished = finished_metrics(run, config)
    if finished is not None:
        if evaluate_test and not finished.tested:
            finished = finished.replace(
                test_accuracy=finished.best_val_accuracy,
                test_loss=finished.best_val_loss)
            run.write_metrics(finished)
        if not keep_state:
            TrainingState(run.path).discard()
        report(f"{run.path}: already finished, reusing its metrics")
        return finished
    splits = load_splits(config.data)  # a missing data file fails here
    run.path.mkdir(parents=True, exist_ok=True)
    state = TrainingState(run.path)
    done = state.recover()
    if not done:
        state.start_fresh()
    run.write_config(config, {"fake": True})
    (run / RunDir.LABELS).write_text(
        "".join(f"{n}\n" for n in splits.class_names))
    rows, stopped_early = _train(config, run, state, done, report,
                                 epoch_hooks)
    metrics = _metrics(config, rows, stopped_early=stopped_early,
                       num_classes=len(splits.class_names),
                       evaluate_test=evaluate_test)
    if not metrics.diverged:
        run.model_path.write_bytes(b"not a real model")
    run.write_metrics(metrics)
    if not keep_state:
        state.discard()
    return metrics


def _train(config, run, state, done: int, report, epoch_hooks):
    """The made-up epochs after `done`, committed one by one as training
    commits them; returns the history rows and whether early stopping
    ended the run."""
    from tuning.trial import verdict
    from tuning.trial.history import read_history, write_history
    from tuning.trial.state import HISTORY, METADATA, WEIGHTS

    rows = read_history(run / HISTORY)
    epochs = config.train.epochs
    patience = config.train.early_stopping_patience
    if done:
        report(f"resuming at epoch {done + 1}/{epochs} from the last "
               "finished epoch")
    stopped_early = False
    for epoch in range(done + 1, epochs + 1):
        row = {"epoch": epoch, **fake_curve(config, epoch), "seconds": 0.01,
               "ended_at": time.time()}
        row["accuracy_gap"] = row["accuracy"] - row["val_accuracy"]
        row["loss_gap"] = row["val_loss"] - row["loss"]
        rows = [r for r in rows if r["epoch"] < epoch] + [row]
        write_history(run / HISTORY, rows)
        report(f"epoch {epoch}/{epochs}  val_accuracy "
               f"{row['val_accuracy']:.4f}")
        if math.isnan(row["loss"]):
            break  # as TerminateOnNaN
        best = verdict.best_row(rows, config.train.objective)
        stopped_early = bool(patience and epoch - best["epoch"] >= patience)
        with tempfile.TemporaryDirectory(dir=run.path) as staged:
            staged = pathlib.Path(staged)
            (staged / WEIGHTS).write_bytes(b"fake weights")
            (staged / HISTORY).write_text((run / HISTORY).read_text())
            (staged / METADATA).write_text(json.dumps({"epoch": epoch}))
            state.seed_from(staged)  # commits the epoch, as training does
        for hook in epoch_hooks:
            hook(list(rows), stopped_early or epoch == epochs)
        if stopped_early:
            break
    return rows, stopped_early


def _metrics(config, rows, *, stopped_early: bool, num_classes: int,
             evaluate_test: bool):
    """The `RunMetrics` of the made-up `rows`, judged by the real trial's
    own `RunMetrics.from_history`; the test figures made up as the
    rest."""
    from tuning.trial.run import RunMetrics

    metrics = RunMetrics.from_history(
        rows, objective=config.train.objective, num_classes=num_classes,
        stopped_early=stopped_early, parameters=config.model.units * 100)
    if evaluate_test and not metrics.diverged:
        metrics = metrics.replace(test_loss=metrics.best_val_loss,
                                  test_accuracy=metrics.best_val_accuracy)
    return metrics.replace(wall_seconds=0.01)
