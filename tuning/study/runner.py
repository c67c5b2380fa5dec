"""Runs one trial of a study, for either backend: table, HParams, trial.

Both backends call `TrialRunner.run(trial_id, values)` (or `start`,
`train` and `finish` from different processes, as Ray does); only how they
pick values and schedule trials differs. The trial itself is one call of
the trial function, `tuning.trial.train.train_and_evaluate` unless the
runner is given another (the tests' stand-in trains nothing, so that search
logic is tested in seconds).
"""

import ctypes
import gc
import json
import pathlib
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from data_pipeline.config import DataConfig
from data_pipeline.sources import TextSplits, load_splits
from tuning.study.results import (COMPLETED, FAILED, RUNNING, STOPPED_EARLY,
                                  ResultsTable, failure_reason,
                                  summary_fields)
from tuning.study.spec import StudySpec
from tuning.trial.config import apply_overrides, from_dict

# trial_function(config, workdir, *, report, epoch_hooks, keep_state,
# evaluate_test) -> metrics, as `train_and_evaluate` takes and returns them.
TrialFunction = Callable[..., dict]

KEEP_VECTORIZED = 4  # distinct data settings whose ids a process keeps


def _release_freed_memory() -> None:
    """Returns freed heap pages to the OS (glibc), so the resident size
    tracks what trials hold rather than their high-water mark."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class TrialFailed(Exception):
    """A trial that raised or diverged; its reason is in the table."""


class TrialRunner:
    """Runs trials into `workdir/trials/<id>` and records them.

    Args:
        workdir: the study's workdir.
        spec: the study.
        table: the results table (shared with the backend's driver).
        report: receives progress lines.
        on_event: called as `on_event(trial_id, event)` after the table
            changed (the driver's progress line).
        strategy: each trial's distribution strategy.
        record: write table rows and HParams sessions here (False where a
            driver process records them, as with Ray).
        status: receives a live line within each epoch of the trials
            trained in this process (a terminal's); None for none.
        trial_function: trains one trial, called as
            `trial_function(config, workdir, report=..., epoch_hooks=...,
            keep_state=...)`; None: `train_and_evaluate` with `strategy`
            and this process's shared data.
    """

    def __init__(self, workdir: pathlib.Path, spec: StudySpec,
                 table: ResultsTable | None, *, report=print,
                 on_event=lambda trial_id, event: None, strategy=None,
                 record: bool = True, status=None,
                 trial_function: TrialFunction | None = None):
        self.workdir = workdir
        self.spec = spec
        self.table = table
        self.report = report
        self.on_event = on_event
        self.strategy = strategy
        self.record = record
        self.status = status
        self.trial_function = trial_function or self.train_and_evaluate
        self._splits: dict[tuple, TextSplits] = {}
        self._vectorized: dict = {}  # vectorize_key -> VectorizedSplits

    def splits(self, data) -> TextSplits:
        """Loads each distinct split once per process (shared by trials)."""
        if data.split_key not in self._splits:
            self._splits[data.split_key] = load_splits(data)
        return self._splits[data.split_key]

    def vectorized(self, data: DataConfig):
        """Vectorizes each distinct split and vocabulary once per process:
        trials that only change the model or training share the ids. The
        most recently used few are kept (a space over `data.*` values)."""
        from data_pipeline.pipeline import VectorizedSplits

        key = data.vectorize_key
        found = self._vectorized.pop(key, None)
        if found is None:
            found = VectorizedSplits.build(
                self.splits(data), max_tokens=data.max_tokens,
                sequence_length=data.sequence_length)
        self._vectorized[key] = found  # now the most recent
        while len(self._vectorized) > KEEP_VECTORIZED:
            del self._vectorized[next(iter(self._vectorized))]
        return found

    def trial_dir(self, trial_id: str) -> pathlib.Path:
        return self.workdir / "trials" / trial_id

    def start(self, trial_id: str, values, **fields) -> None:
        """Records the trial running (with `fields` in its row)."""
        active = self.spec.space.active(values)
        self.table.update(trial_id, status=RUNNING, reason="",
                          node=socket.gethostname(), started_at=time.time(),
                          ended_at=None, **active, **fields)
        from tuning.study import hparams  # TensorFlow: where it records

        hparams.start_session(
            self.trial_dir(trial_id), trial_id, self.spec.space, values,
            hparams.derived_values(self.spec.trial_config(values)))
        self.on_event(trial_id, "started")

    def finish(self, trial_id: str, status: str, reason: str = "",
               metrics: dict | None = None) -> None:
        fields = summary_fields(metrics) if metrics else {}
        self.table.update(trial_id, status=status, reason=reason,
                          ended_at=time.time(), **fields)
        from tuning.study import hparams

        hparams.end_session(self.trial_dir(trial_id), status, fields)
        self.on_event(trial_id, status + (f" ({reason})" if reason else ""))

    def train(self, trial_id: str, values, *, epochs: int | None = None,
              epoch_hooks=(), keep_state: bool = False,
              overrides: Mapping[str, Any] | None = None) -> dict:
        """Trains the trial; raises `TrialFailed` if it raises or diverges.

        Args:
            overrides: config keys set over the sampled values (a
                confirmation's `train.seed`).

        Returns:
            The trial's metrics.
        """
        config = self.spec.trial_config(values, epochs=epochs)
        if overrides:
            config = apply_overrides(config, overrides)

        def prefixed(line):
            self.report(f"  [trial {trial_id}] {line}")

        try:
            metrics = self.trial_function(
                config, self.trial_dir(trial_id), report=prefixed,
                epoch_hooks=epoch_hooks, keep_state=keep_state,
                evaluate_test=False)  # see `evaluate_chosen`
        except Exception as e:  # any trial error is the trial's failure
            reason = failure_reason(e)
            if self.record:
                self.finish(trial_id, FAILED, reason)
            raise TrialFailed(reason) from e
        if metrics["status"] == "diverged":
            reason = f"diverged: {metrics['verdict_reason']}"
            if self.record:
                self.finish(trial_id, FAILED, reason, metrics)
            raise TrialFailed(reason)
        return metrics

    def evaluate_chosen(self, trial_id: str) -> dict:
        """The finished trial's metrics with its test figures (evaluated
        now if the trial has none): for the model a study chooses."""
        trial_dir = self.trial_dir(trial_id)
        config = from_dict(json.loads((trial_dir / "config.json")
                                      .read_text())["config"])
        return self.trial_function(
            config, trial_dir, report=lambda line: None, epoch_hooks=(),
            keep_state=True, evaluate_test=True)

    def train_and_evaluate(self, config, workdir: pathlib.Path, *, report,
                           epoch_hooks, keep_state: bool,
                           evaluate_test: bool) -> dict:
        """The real trial function, on the data this process shares."""
        import keras

        from tuning.trial.train import train_and_evaluate
        from tuning.trial.workdir import check_workdir

        # A finished trial (reused, or evaluated on test) needs no ids.
        finished = check_workdir(workdir, config) is not None
        # Free the previous trial's graphs and layers: without this a long
        # study grows the process's memory trial after trial.
        keras.backend.clear_session(free_memory=True)
        gc.collect()
        _release_freed_memory()
        status = self.status and (
            lambda text: self.status(f"  [trial {workdir.name}] {text}"))
        return train_and_evaluate(
            config, workdir, strategy=self.strategy,
            splits=self.splits(config.data),
            vectorized=None if finished else self.vectorized(config.data),
            report=report,
            status=status, epoch_hooks=epoch_hooks, keep_state=keep_state,
            evaluate_test=evaluate_test)

    def run(self, trial_id: str, values, *, epochs: int | None = None,
            keep_state: bool = False) -> dict:
        """Starts, trains and finishes one trial (in-process backends)."""
        self.start(trial_id, values)
        metrics = self.train(trial_id, values, epochs=epochs,
                             keep_state=keep_state)
        status = STOPPED_EARLY if metrics["stopped_early"] else COMPLETED
        self.finish(trial_id, status,
                    "early stopping" if metrics["stopped_early"] else "",
                    metrics)
        return metrics
