"""TensorBoard HParams records for a study.

The experiment (every searched key with its domain, and the metrics) is
written once, at the study's start, into `WORKDIR/logs`, so no key goes
missing whatever the trials sample. Each trial's session is written into
its own `trials/<id>/logs` run when it starts (status: running) and closed
with its final status; summary metrics are written for every trial, failed
ones included, so none shows as empty.
"""

import math
import pathlib
import time
from collections.abc import Mapping

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hp_summary

from models.config import cudnn_layers
from tuning.study.space import SearchSpace
from tuning.trial.run import Status, StudyDir

# (tag, run group under the session, description)
METRICS = (
    ("epoch_accuracy", "validation", "validation accuracy (last epoch)"),
    ("epoch_loss", "validation", "validation loss (last epoch)"),
    ("epoch_accuracy", "train", "training accuracy (last epoch)"),
    ("epoch_loss", "train", "training loss (last epoch)"),
    ("epoch_accuracy_gap", "gap", "train - validation accuracy"),
    ("best_objective", "", "best value of the study objective"),
    ("best_epoch", "", "epoch of the best objective"),
    ("epochs_run", "", "epochs the trial ran"),
    ("final_accuracy_gap", "", "train - validation accuracy at the end"),
    ("accuracy_gap_at_best", "", "train - validation accuracy at the best "
     "epoch"),
    ("gap_slope", "", "slope of the accuracy gap over the last 3 epochs"),
    ("overfit_onset_epoch", "", "epoch from which the trial overfits "
     "(NaN: it does not)"),
    ("overfitting", "", "1 if the verdict is overfitting, else 0"),
    ("failed", "", "1 if the trial failed, else 0"),
)
# A regression's: its errors where a classification has accuracies.
REGRESSION_METRICS = (
    ("epoch_loss", "validation", "validation mean squared error (last "
     "epoch)"),
    ("epoch_mae", "validation", "validation mean absolute error (last "
     "epoch)"),
    ("epoch_rmse", "validation", "validation root mean squared error "
     "(last epoch)"),
    ("epoch_loss", "train", "training mean squared error (last epoch)"),
    ("epoch_loss_gap", "gap", "validation - train loss"),
    *(m for m in METRICS if not m[1] and "accuracy" not in m[0]),
)
STATUS = {
    Status.COMPLETED: api_pb2.STATUS_SUCCESS,
    Status.STOPPED_EARLY: api_pb2.STATUS_SUCCESS,  # ended normally, early
    Status.CONFIRMED: api_pb2.STATUS_SUCCESS,  # a top trial's rerun
    Status.FAILED: api_pb2.STATUS_FAILURE,
}


def _domain(dimension):
    if dimension.kind == "choice":
        values = list(dimension.values)
        if all(isinstance(v, bool) for v in values):
            return hp.Discrete(values)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool)
               for v in values):
            return hp.Discrete([float(v) for v in values])
        return hp.Discrete([str(v) for v in values])
    if dimension.kind == "int":
        return hp.IntInterval(int(dimension.low), int(dimension.high))
    return hp.RealInterval(float(dimension.low), float(dimension.high))


def _value(dimension, value):
    if dimension.kind == "choice" and not all(
            isinstance(v, bool) for v in dimension.values):
        if all(isinstance(v, (int, float)) for v in dimension.values):
            return float(value)
        return str(value)
    return value


# Columns derived from each trial's config, beside the searched keys.
DERIVED = {
    "cudnn": (hp.Discrete([False, True]),
              "every recurrent layer can take cuDNN on a GPU"),
}


def derived_values(config) -> dict:
    """The `DERIVED` columns of a trial's config."""
    return {"cudnn": all(layer["cudnn"]
                         for layer in cudnn_layers(config.model))}


def write_experiment(workdir: pathlib.Path, space: SearchSpace, *,
                     task: str = "classification") -> None:
    """The experiment config: every key of `space`, the derived columns
    and every metric of `task`'s runs."""
    hparams = [hp.HParam(d.key, _domain(d)) for d in space.dimensions]
    hparams += [hp.HParam(name, domain, description=text)
                for name, (domain, text) in DERIVED.items()]
    metrics = [hp.Metric(tag, group=group or None, description=text)
               for tag, group, text in (
                   REGRESSION_METRICS if task != "classification" else METRICS)]
    writer = tf.summary.create_file_writer(str(StudyDir(workdir).logs))
    with writer.as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()


def start_session(logdir: pathlib.Path, trial_id: str,
                  space: SearchSpace, values: Mapping,
                  derived: Mapping | None = None) -> None:
    """Opens the trial's session in its `logdir`: it shows from now on
    (status unknown until it ends: TensorBoard keeps the first status a
    session gets), with its summary metrics as NaN until the trial ends.
    `derived` holds its `DERIVED` columns."""
    by_key = {d.key: d for d in space.dimensions}
    hparams = {key: _value(by_key[key], value)
               for key, value in space.active(values).items()}
    hparams.update(derived or {})
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hp.hparams(hparams, trial_id=trial_id)
        _write_summary_metrics({}, failed=False, step=0)
    writer.close()


def _write_summary_metrics(metrics: Mapping[str, float], *, failed: bool,
                           step: int) -> None:
    for tag, group, _ in METRICS:
        if group:
            continue
        if tag == "failed":
            value = float(failed)
        elif tag == "overfitting":
            verdict = metrics.get("verdict")
            value = None if verdict is None else float(
                verdict == "overfitting")
        else:
            value = metrics.get(tag)
        tf.summary.scalar(tag, math.nan if value is None else float(value),
                          step=step)


def end_session(logdir: pathlib.Path, status: Status,
                metrics: Mapping[str, float]) -> None:
    """Closes the session in `logdir` with its final status and summary
    metrics.

    A metric with no value (a trial that failed before its first epoch)
    stays NaN rather than missing.
    """
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        # Step 1: the final values supersede the step-0 placeholders.
        _write_summary_metrics(metrics, failed=status == Status.FAILED,
                               step=1)
        pb = hp_summary.session_end_pb(STATUS[status], int(time.time()))
        tf.summary.experimental.write_raw_pb(pb.SerializeToString(), step=1)
    writer.close()
