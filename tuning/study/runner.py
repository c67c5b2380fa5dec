"""Trains a study's trials, for either backend.

    trainer = TrialTrainer(StudyDir(workdir), spec, strategy=strategy)
    metrics = run_trial(recorder, trainer, trial_id, values)

`TrialTrainer` trains a trial into `trials/<id>` with one call of the trial
function, `tuning.trial.train.train_and_evaluate` unless it is given
another (the tests' stand-in trains nothing, so that search logic is
tested in seconds); it records nothing. `tuning.study.recorder.
TrialRecorder` records; `run_trial` does both, for the backends that train
in the process that records (Keras Tuner, confirmations). Ray trains in
its workers and records in its driver.
"""

import ctypes
import gc
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from data_pipeline.config import DataConfig
from tuning.study.recorder import TrialRecorder
from tuning.study.spec import StudySpec
from tuning.trial.config import apply_overrides
from tuning.trial.run import (RunDir, RunMetrics, Status, StudyDir,
                              status_of)

# trial_function(config, workdir, *, report, epoch_hooks, keep_state,
# evaluate_test) -> RunMetrics, as `train_and_evaluate` takes and returns
# them.
TrialFunction = Callable[..., RunMetrics]

KEEP_VECTORIZED = 4  # distinct data settings whose ids a process keeps


def _release_freed_memory() -> None:
    """Returns freed heap pages to the OS (glibc), so the resident size
    tracks what trials hold rather than their high-water mark."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def failure_reason(error: BaseException) -> str:
    """One line naming an exception (a failed trial's reason)."""
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first}"[:300]


class TrialFailed(Exception):
    """A trial that raised or diverged.

    Attributes:
        reason: one line saying why (the results table's reason).
        metrics: the diverged run's metrics (None if it raised).
    """

    def __init__(self, reason: str, metrics: RunMetrics | None = None):
        super().__init__(reason)
        self.reason = reason
        self.metrics = metrics


class TrialTrainer:
    """Trains trials into `study.trial(id)`.

    Args:
        study: the study's directory.
        spec: the study.
        report: receives the trials' lines, prefixed `[trial <id>]`.
        strategy: each trial's distribution strategy.
        status: receives a live line within each epoch of the trials
            trained in this process (a terminal's); None for none.
        trial_function: trains one trial, called as
            `trial_function(config, workdir, report=..., epoch_hooks=...,
            keep_state=..., evaluate_test=...)`; None:
            `train_and_evaluate` with `strategy` and this process's shared
            data.
        shipped: the study's data as the driver sent it (`--ship-data`),
            opened instead of the data cache for the settings it serves.
    """

    def __init__(self, study: StudyDir, spec: StudySpec, *, report=print,
                 strategy=None, status=None,
                 trial_function: TrialFunction | None = None,
                 shipped=None):
        self.study = study
        self.spec = spec
        self.report = report
        self.strategy = strategy
        self.status = status
        self.trial_function = trial_function or self.train_and_evaluate
        self.shipped = shipped
        self._vectorized: dict = {}  # vectorize_key -> VectorizedSplits

    def vectorized(self, data: DataConfig, *, report=None):
        """The data of a trial: opened from the study's data cache (built
        there by the first trial that needs it; memory-mapped, so the
        trials of a node share its pages), or vectorized in this process
        with `data.cache` off; or from the data the driver shipped. The
        most recently used few stay open (a space over `data.*` values).
        `report` (default the trainer's) receives what it says."""
        from data_pipeline.cache import open_vectorized

        report = report or self.report
        key = data.vectorize_key
        found = self._vectorized.pop(key, None)
        if found is None and self.shipped and self.shipped.serves(data):
            found = self.shipped.open(data)
            report("data: from the study's copy in Ray's object store")
        elif found is None:
            found = open_vectorized(data, root=self.study.data_cache,
                                    report=report)
        self._vectorized[key] = found  # now the most recent
        while len(self._vectorized) > KEEP_VECTORIZED:
            del self._vectorized[next(iter(self._vectorized))]
        return found

    def train(self, trial_id: str, values, *, epochs: int | None = None,
              epoch_hooks=(), keep_state: bool = False,
              overrides: Mapping[str, Any] | None = None) -> RunMetrics:
        """Trains the trial.

        Args:
            overrides: config keys set over the sampled values (a
                confirmation's `train.seed`).

        Returns:
            The trial's metrics.

        Raises:
            TrialFailed: the trial raised or diverged.
        """
        config = self.spec.trial_config(values, epochs=epochs)
        if overrides:
            config = apply_overrides(config, overrides)

        def prefixed(line):
            self.report(f"  [trial {trial_id}] {line}")

        try:
            metrics = self.trial_function(
                config, self.study.trial(trial_id).path, report=prefixed,
                epoch_hooks=epoch_hooks, keep_state=keep_state,
                evaluate_test=False)  # see `evaluate_chosen`
        except Exception as e:  # any trial error is the trial's failure
            raise TrialFailed(failure_reason(e)) from e
        if metrics.diverged:
            raise TrialFailed(status_of(metrics)[1], metrics)
        return metrics

    def evaluate_chosen(self, trial_id: str) -> RunMetrics:
        """The finished trial's metrics with its test figures (evaluated
        now if the trial has none): for the model a study chooses."""
        run = self.study.trial(trial_id)
        return self.trial_function(
            run.read_config(), run.path, report=lambda line: None,
            epoch_hooks=(), keep_state=True, evaluate_test=True)

    def train_and_evaluate(self, config, workdir: pathlib.Path, *, report,
                           epoch_hooks, keep_state: bool,
                           evaluate_test: bool) -> RunMetrics:
        """The real trial function, on the data this process shares."""
        import keras

        from tuning.trial.train import train_and_evaluate
        from tuning.trial.workdir import finished_metrics

        # A finished trial needs its data only to be evaluated on test.
        finished = finished_metrics(RunDir(workdir), config) is not None
        # Free the previous trial's graphs and layers: without this a long
        # study grows the process's memory trial after trial.
        keras.backend.clear_session(free_memory=True)
        gc.collect()
        _release_freed_memory()
        status = self.status and (
            lambda text: self.status(f"  [trial {workdir.name}] {text}"))
        return train_and_evaluate(
            config, workdir, strategy=self.strategy,
            vectorized=(self.vectorized(config.data, report=report)
                        if evaluate_test or not finished else None),
            report=report,
            status=status, epoch_hooks=epoch_hooks, keep_state=keep_state,
            evaluate_test=evaluate_test)


def run_trial(recorder: TrialRecorder, trainer: TrialTrainer,
              trial_id: str, values, *, epochs: int | None = None,
              keep_state: bool = False) -> RunMetrics:
    """Starts, trains and finishes one trial in this process.

    Raises:
        TrialFailed: the trial failed (recorded so).
    """
    recorder.start(trial_id, values)
    try:
        metrics = trainer.train(trial_id, values, epochs=epochs,
                                keep_state=keep_state)
    except TrialFailed as e:
        recorder.finish(trial_id, *failed(e))
        raise
    recorder.finish(trial_id, *status_of(metrics), metrics)
    return metrics


def failed(error: TrialFailed) -> tuple:
    """`(status, reason, metrics)` to record a failed trial with."""
    return Status.FAILED, error.reason, error.metrics
