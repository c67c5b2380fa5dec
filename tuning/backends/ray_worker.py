"""What runs inside a Ray trial: the trainable, its epoch reports and its
checkpoints.

A trial reports values, never files: each epoch's history row (with the
best so far) and a checkpoint of its training state, then its final
`RunMetrics` as `summary`; its lines (such as "resuming at epoch 4/12")
travel with the next report, since a trial's own output does not reach
the driver. The final report is marked `done`, Ray's own flag, so no
scheduler acts on it: a PBT exploit there would hand a finished trial
another trial's config. Imported through `tuning.backends.ray_tune`,
which sets Ray's environment first.
"""

import json
import math
import pathlib
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray import tune
from ray.tune.result import DONE

from data_pipeline.cache import ShippedData
from tuning.study.runner import TrialFailed, TrialFunction, TrialTrainer
from tuning.study.spec import StudySpec
from tuning.trial.run import RunDir, RunMetrics, StudyDir
from tuning.trial.state import TrainingState
from tuning.trial.verdict import best_row

# Where a trial stages its checkpoint for Ray, and the file in it naming
# the trial it came from.
STAGING = "ray_checkpoint"
ORIGIN = "origin.json"
EPOCH_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "val_mae",
              "val_rmse", "accuracy_gap", "loss_gap", "seconds")


def node() -> str:
    """The Ray node this process runs on (its id's first 12 digits)."""
    return ray.get_runtime_context().get_node_id()[:12]


def epoch_result(rows: Sequence[Mapping[str, Any]], objective: str) -> dict:
    """What a trial reports of its history `rows`: the last finished
    epoch's figures and the best so far."""
    last = rows[-1]
    best = best_row(rows, objective)
    return {"epoch": last["epoch"],
            **{k: last.get(k, math.nan) for k in EPOCH_KEYS},
            "best_objective": best[objective], "best_epoch": best["epoch"],
            "node": node()}


def recorded_result(metrics: RunMetrics) -> dict:
    """`epoch_result` of a finished run, from its metrics alone."""
    return {"epoch": metrics.epochs_run, "loss": metrics.final_train_loss,
            "accuracy": metrics.final_train_accuracy,
            "val_loss": metrics.final_val_loss,
            "val_accuracy": metrics.final_val_accuracy,
            "val_mae": metrics.final_val_mae,
            "val_rmse": metrics.final_val_rmse,
            "accuracy_gap": metrics.final_accuracy_gap,
            "loss_gap": metrics.final_loss_gap,
            "seconds": metrics.seconds_per_epoch,
            "best_objective": metrics.best_objective,
            "best_epoch": metrics.best_epoch, "node": node()}


class Messages:
    """The trial's lines: kept in Ray's logs and carried to the driver
    with the next report."""

    def __init__(self):
        self._lines: list[str] = []

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self._lines.append(line)

    def take(self) -> list[str]:
        lines, self._lines = self._lines, []
        return lines


class EpochReporter:
    """Reports each epoch's row to Ray with a checkpoint of the trial's
    state (an epoch hook of the trial function, so ASHA, HyperBand and PBT
    can stop or exploit the trial between epochs).

    Runs after the trial's history row and training state are committed.
    The trial's last epoch is not reported here: it goes out with the
    final metrics once the model is exported, so a scheduler that stops a
    trial at its epoch budget never cuts the export short.

    Attributes:
        rows: the trial's history rows as last received.
    """

    def __init__(self, run: RunDir, trial_id: str, objective: str,
                 messages: Messages):
        self.run = run
        self.trial_id = trial_id
        self.objective = objective
        self.messages = messages
        self.rows: list[dict] = []

    def __call__(self, rows: Sequence[Mapping[str, Any]], last: bool
                 ) -> None:
        self.rows = list(rows)
        if last:
            return
        staging = self.run / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        TrainingState(self.run.path).copy_to(staging)
        (staging / ORIGIN).write_text(json.dumps({"trial": self.trial_id}))
        tune.report({**epoch_result(self.rows, self.objective),
                     "messages": self.messages.take()},
                    checkpoint=tune.Checkpoint.from_directory(str(staging)))


def restore_checkpoint(run: RunDir, trial_id: str) -> None:
    """Puts Ray's checkpoint where the trial function resumes from.

    A checkpoint from this very trial is already there (its training
    state may even be newer); one from another trial (a PBT exploit)
    replaces the state, and the run's result is forgotten since its config
    was mutated.
    """
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return
    state = TrainingState(run.path)
    with checkpoint.as_directory() as path:
        path = pathlib.Path(path)
        origin = json.loads((path / ORIGIN).read_text())["trial"]
        if origin == trial_id and state.recover():
            return
        state.discard()
        state.seed_from(path)
    run.forget_result()


def _finished(run: RunDir) -> RunMetrics | None:
    try:
        return run.read_metrics()
    except (ValueError, TypeError):
        return None  # damaged: the trial function says so when it trains


def trainable(values: dict, *, workdir: str, spec: dict, devices: str,
              trial_function: TrialFunction | None = None,
              ended: Mapping[str, dict] | None = None,
              data: ShippedData | None = None) -> None:
    """One Ray trial: the one trial function, every epoch reported.

    It mirrors across the devices Ray gave it (the GPUs in its
    `CUDA_VISIBLE_DEVICES`, with `devices="auto"`). A trial that has
    already ended (Ray restores a study from an experiment snapshot that
    can be older than the trials' own files) reports its recorded result
    at once and trains nothing: a finished trial stays finished.

    Args:
        values: the trial's sampled values.
        workdir: the study's directory.
        spec: the study (`StudySpec.to_dict`).
        devices: what each trial mirrors across (`--devices`).
        trial_function: what trains (None: the real trial function).
        ended: the result (`epoch_result`'s keys) of each trial the study
            had recorded as ended when it was (re)started, by id.
        data: the study's data from Ray's object store (`--ship-data`);
            None: the trial opens the study's data cache.
    """
    trial_id = tune.get_context().get_trial_id()
    spec = StudySpec.from_dict(spec)
    study = StudyDir(workdir)
    run = study.trial(trial_id)
    if ended and trial_id in ended:
        tune.report({**ended[trial_id], DONE: True, "recorded": True})
        return
    finished = _finished(run)
    if finished is not None:
        tune.report({**recorded_result(finished), DONE: True,
                     "summary": finished.to_dict(), "messages": []})
        return
    from tuning.trial.devices import make_strategy, parse_devices

    # Before any TensorFlow op; only the real trial function uses it.
    strategy = (make_strategy(parse_devices(devices))
                if trial_function is None else None)
    messages = Messages()
    trainer = TrialTrainer(study, spec, report=messages, strategy=strategy,
                           trial_function=trial_function, shipped=data)
    restore_checkpoint(run, trial_id)
    reporter = EpochReporter(run, trial_id, spec.objective, messages)
    try:
        metrics = trainer.train(trial_id, values, epoch_hooks=[reporter])
    except TrialFailed as e:
        raise RuntimeError(str(e)) from None
    result = (epoch_result(reporter.rows, spec.objective) if reporter.rows
              else recorded_result(metrics))
    tune.report({**result, DONE: True, "summary": metrics.to_dict(),
                 "messages": messages.take()})
