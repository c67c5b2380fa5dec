"""The results table of a study: `trials.csv` and `trials.json`, one row
per trial, with the statuses (`tuning.trial.run.Status`) both backends
record."""

import contextlib
import csv
import io
import fcntl
import json
import pathlib
import threading

from tuning.study.space import SearchSpace
from tuning.trial.config import ConfigError
from tuning.trial.files import json_safe, write_atomic, write_json
from tuning.trial.run import (FINISHED, SUMMARY_FIELDS, Status, StudyDir,
                              status_of)
from tuning.trial.verdict import best_first


# The results-table columns of a trial's metrics (`RunMetrics.summary`).
COLUMN_FIELDS = ("best_objective", "best_epoch", "stopped_epoch",
                 *SUMMARY_FIELDS[2:])
TEXT_COLUMNS = ("trial_id", "status", "reason", "verdict", "node",
                "confirms")


def _parse_cell(text: str):
    """A `trials.csv` cell back as the value it was written from."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


class ResultsTable:
    """`trials.csv` and `trials.json`: one row per trial, rewritten whole
    (atomically) on every change, so a reader never sees half a table.
    Each trial's row is also kept in its own `trials/<id>/row.json`.

    Several processes may share one table (Keras Tuner workers): each
    update re-reads it under an exclusive file lock. An unreadable or
    missing `trials.json` is rebuilt from `trials.csv`, or, without that
    either, from the trial directories.
    """

    def __init__(self, workdir: pathlib.Path, space: SearchSpace):
        self.workdir = workdir
        self.study = StudyDir(workdir)
        self.space = space
        self.keys = space.keys
        self._lock = threading.Lock()
        self.rows: dict[str, dict] = self._read()
        if self.rows and self._from_json() is None:
            with self._locked():  # rebuilt: write it back whole
                if self._from_json() is None:  # nobody did meanwhile
                    self._write()
                self.rows = self._read()

    def _read(self) -> dict[str, dict]:
        for read in (self._from_json, self._from_csv, self._from_trials):
            rows = read()
            if rows is not None:
                return {r["trial_id"]: r for r in rows}
        return {}

    def _from_json(self) -> list[dict] | None:
        try:
            return json.loads((self.study / StudyDir.TRIALS_JSON)
                              .read_text())
        except (OSError, ValueError):
            return None

    def _from_csv(self) -> list[dict] | None:
        try:
            with open(self.study / StudyDir.TRIALS_CSV, newline="",
                      encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, csv.Error, UnicodeDecodeError):
            return None
        if not rows or any(r.get("trial_id") in (None, "")
                           or None in r.values() for r in rows):
            return None  # empty or cut short
        return [{k: v if k in TEXT_COLUMNS else _parse_cell(v)
                 for k, v in r.items() if v != ""} for r in rows]

    def _from_trials(self) -> list[dict] | None:
        """Each trial's own `row.json`, or its config and metrics."""
        rows = []
        for run in self.study.trials():
            try:
                rows.append(json.loads((run / run.ROW).read_text()))
                continue
            except (OSError, ValueError):
                pass
            try:
                config = run.read_config()
            except (OSError, ValueError, KeyError, ConfigError):
                continue  # never started training: nothing to keep
            flat = config.flat()
            row = {"trial_id": run.name, **self.space.active(
                {k: flat[k] for k in self.keys})}
            try:
                metrics = run.read_metrics()
            except (ValueError, TypeError):
                metrics = None
            if metrics is None:
                row.update(status=Status.RUNNING, reason="interrupted")
            else:
                status, reason = status_of(metrics)
                row.update(status=status, reason=reason,
                           **{k: json_safe(v) for k, v in
                              metrics.summary().items()})
            rows.append(row)
        return rows or None

    def refresh(self) -> None:
        self.rows = self._read()

    @property
    def columns(self) -> list[str]:
        return ["trial_id", "status", "reason", *self.keys,
                *COLUMN_FIELDS, "confirms", "seed", "node", "started_at",
                "ended_at"]

    @contextlib.contextmanager
    def _locked(self):
        with self._lock, open(self.study / StudyDir.TRIALS_LOCK,
                              "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self) -> None:
        rows = sorted(self.rows.values(), key=lambda r: r["trial_id"])
        write_json(self.study / StudyDir.TRIALS_JSON, rows)
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=self.columns,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.study / StudyDir.TRIALS_CSV, table.getvalue())

    def update(self, trial_id: str, **fields) -> dict:
        with self._locked():
            self.rows = self._read()
            row = self.rows.setdefault(trial_id, {"trial_id": trial_id})
            row.update({k: json_safe(v) for k, v in fields.items()})
            self._write()
            run = self.study.trial(trial_id)
            run.path.mkdir(parents=True, exist_ok=True)
            write_json(run / run.ROW, row)
            return dict(row)

    def consecutive_failures(self) -> int:
        """Failed trials since the last one that did not fail."""
        ended = sorted((r for r in self.rows.values() if r.get("ended_at")),
                       key=lambda r: r["ended_at"])
        count = 0
        for row in reversed(ended):
            if row["status"] != Status.FAILED:
                break
            count += 1
        return count

    def finished(self) -> list[dict]:
        """The search's finished trials (confirmations aside)."""
        return [r for r in self.rows.values()
                if r["status"] in FINISHED]

    def searched(self) -> list[dict]:
        """The search's trials, whatever their status (confirmations
        aside)."""
        return [r for r in self.rows.values() if not r.get("confirms")]

    def confirmations(self, trial_id: str) -> list[dict]:
        """The finished confirmation runs of the trial `trial_id`."""
        return [r for r in self.rows.values()
                if r.get("confirms") == trial_id
                and r["status"] == Status.CONFIRMED]

    def ranked(self, objective: str) -> list[dict]:
        """The finished trials with a figure for `objective`, best first
        (ties in table order)."""
        return best_first(self.finished(), objective,
                          lambda r: r.get("best_objective"))

    def best(self, objective: str, *, with_model: bool = False
             ) -> dict | None:
        """The finished trial with the best objective; with `with_model`,
        among those that exported a model (a trial a scheduler stopped
        did not)."""
        return next((r for r in self.ranked(objective) if not with_model
                     or self.study.trial(r["trial_id"]).has_model()), None)
