"""What both tuning backends share: the study spec, the results table,
the TensorBoard HParams records and the best-model export.

A study's workdir:

    study.json          the spec (base config, space, backend, budget)
    trials.csv, trials.json   one row per trial, updated as trials run
    trials/<id>/        one trial workdir each (see `tuning.trial`)
    trials/<id>/logs/   the trial's HParams session and scalars
    logs/               the HParams experiment (every key, its domain)
    best/               best trial's hparams.json, model.keras, labels.txt
    keras_tuner/ or ray/   the backend's own directory
"""

import contextlib
import csv
import dataclasses
import fcntl
import io
import json
import os
import pathlib
import shutil
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

from tuning import space as space_module
from tuning.config import Config, ConfigError, from_dict
from tuning.files import json_safe, write_atomic, write_json
from tuning.space import SearchSpace

Backend = Literal["keras-tuner", "ray"]
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "keras-tuner": ("random", "bayesian", "hyperband", "grid"),
    "ray": ("random", "grid", "tpe", "asha", "hyperband", "pbt"),
}
OBJECTIVES = ("val_accuracy", "val_loss")

# Status words of the results table.
RUNNING = "running"
COMPLETED = "completed"
STOPPED_EARLY = "stopped early"
FAILED = "failed"

SUMMARY_FIELDS = ("best_objective", "best_epoch", "stopped_epoch",
                  "epochs_run", "final_accuracy_gap", "accuracy_gap_at_best",
                  "gap_slope", "overfit_onset_epoch", "verdict",
                  "best_val_accuracy", "best_val_loss", "test_accuracy",
                  "wall_seconds")


class StudyFailed(RuntimeError):
    """The study stopped: too many consecutive trials failed."""


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """Everything needed to run, and to resume, a study.

    Attributes:
        base: the configuration every trial starts from.
        space: what to search.
        backend: `keras-tuner` or `ray`.
        algorithm: one of `ALGORITHMS[backend]`.
        max_trials: the number of trials the study ends with.
        objective: `val_accuracy` (maximized) or `val_loss` (minimized).
        max_epochs: epochs per trial (the schedulers' budget).
        max_consecutive_failures: stop the study after this many failed
            trials in a row.
        retrain_best: retrain the best configuration on train +
            validation before exporting it.
        seed: seed of the search algorithm.
    """

    base: Config
    space: SearchSpace
    backend: Backend
    algorithm: str
    max_trials: int
    objective: str = "val_accuracy"
    max_epochs: int = 10
    max_consecutive_failures: int = 3
    retrain_best: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.backend not in ALGORITHMS:
            raise ConfigError(f"backend {self.backend!r}: expected one of "
                              f"{', '.join(ALGORITHMS)}")
        if self.algorithm not in ALGORITHMS[self.backend]:
            raise ConfigError(
                f"algorithm {self.algorithm!r} is not one of the "
                f"{self.backend} backend's: "
                f"{', '.join(ALGORITHMS[self.backend])}")
        if self.max_trials < 1:
            raise ConfigError(f"max_trials={self.max_trials}: expected an "
                              "integer >= 1")
        if self.max_epochs < 1:
            raise ConfigError(f"max_epochs={self.max_epochs}: expected an "
                              "integer >= 1")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective {self.objective!r}: expected one "
                              f"of {', '.join(OBJECTIVES)}")
        if self.max_consecutive_failures < 1:
            raise ConfigError("max_consecutive_failures: expected an "
                              "integer >= 1")

    @property
    def mode(self) -> str:
        return "min" if self.objective.endswith("loss") else "max"

    def trial_config(self, values: Mapping[str, Any], *,
                     epochs: int | None = None) -> Config:
        """The config of a trial with these sampled values."""
        config = self.space.configure(self.base, values)
        return dataclasses.replace(config, train=dataclasses.replace(
            config.train, epochs=epochs or self.max_epochs,
            objective=self.objective))

    def to_dict(self) -> dict:
        return {
            "base": self.base.to_dict(), "space": self.space.to_dict(),
            "space_name": self.space.name, "backend": self.backend,
            "algorithm": self.algorithm, "max_trials": self.max_trials,
            "objective": self.objective, "max_epochs": self.max_epochs,
            "max_consecutive_failures": self.max_consecutive_failures,
            "retrain_best": self.retrain_best, "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "StudySpec":
        data = dict(data)
        base = from_dict(data.pop("base"))
        space = space_module.from_dict(data.pop("space"),
                                       name=data.pop("space_name"))
        return cls(base=base, space=space, **data)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where a study's trials run: not part of what is searched.

    Attributes:
        devices: each trial's `--devices` (see `tuning.devices`).
        gpus_per_trial: GPUs each trial gets (Ray: may be fractional).
        cpus_per_trial: CPUs each Ray trial reserves.
        concurrent_trials: trials at once (None: as many as fit). With
            Keras Tuner, 0 runs the chief alone: workers join it with
            `rnntune worker`.
        oracle_host: where the Keras Tuner chief listens.
        oracle_port: its port (None: a free one).
    """

    devices: str = "auto"
    gpus_per_trial: float = 0
    cpus_per_trial: float = 1
    concurrent_trials: int | None = None
    oracle_host: str = "127.0.0.1"
    oracle_port: int | None = None

    def __post_init__(self):
        if self.gpus_per_trial < 0:
            raise ConfigError(f"--gpus-per-trial {self.gpus_per_trial:g}: "
                              "expected a number >= 0")
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"--cpus-per-trial {self.cpus_per_trial:g}: "
                              "expected a number > 0")
        if self.concurrent_trials is not None and self.concurrent_trials < 0:
            raise ConfigError(f"--concurrent-trials "
                              f"{self.concurrent_trials}: expected >= 0 "
                              "(0: a Keras Tuner chief alone)")


def save_runtime(workdir: pathlib.Path, runtime: Runtime) -> None:
    write_json(workdir / "runtime.json", dataclasses.asdict(runtime))


def load_runtime(workdir: pathlib.Path) -> Runtime:
    path = workdir / "runtime.json"
    if not path.exists():
        return Runtime()
    return Runtime(**json.loads(path.read_text()))


def save_spec(workdir: pathlib.Path, spec: StudySpec) -> None:
    write_json(workdir / "study.json", spec.to_dict())


def load_spec(workdir: pathlib.Path) -> StudySpec:
    path = workdir / "study.json"
    if not path.exists():
        raise ConfigError(f"{workdir}: no study to resume (no study.json)")
    try:
        return StudySpec.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: unreadable study spec ({e})") from None


TEXT_COLUMNS = ("trial_id", "status", "reason", "verdict", "node")


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
            return json.loads((self.workdir / "trials.json").read_text())
        except (OSError, ValueError):
            return None

    def _from_csv(self) -> list[dict] | None:
        try:
            with open(self.workdir / "trials.csv", newline="",
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
        for trial_dir in sorted((self.workdir / "trials").glob("*/")):
            try:
                rows.append(json.loads((trial_dir / "row.json").read_text()))
                continue
            except (OSError, ValueError):
                pass
            try:
                config = from_dict(json.loads(
                    (trial_dir / "config.json").read_text())["config"])
            except (OSError, ValueError, KeyError, ConfigError):
                continue  # never started training: nothing to keep
            flat = config.flat()
            row = {"trial_id": trial_dir.name, **self.space.active(
                {k: flat[k] for k in self.keys})}
            try:
                metrics = json.loads((trial_dir / "metrics.json").read_text())
            except (OSError, ValueError):
                row.update(status=RUNNING, reason="interrupted")
            else:
                early = metrics["stopped_early"]
                status, reason = (
                    (FAILED, f"diverged: {metrics['verdict_reason']}")
                    if metrics["status"] == "diverged" else
                    (STOPPED_EARLY, "early stopping") if early else
                    (COMPLETED, ""))
                row.update(status=status, reason=reason,
                           **{k: json_safe(v) for k, v in
                              summary_fields(metrics).items()})
            rows.append(row)
        return rows or None

    def refresh(self) -> None:
        self.rows = self._read()

    @property
    def columns(self) -> list[str]:
        return ["trial_id", "status", "reason", *self.keys,
                *SUMMARY_FIELDS, "node", "started_at", "ended_at"]

    @contextlib.contextmanager
    def _locked(self):
        with self._lock, open(self.workdir / "trials.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self) -> None:
        rows = sorted(self.rows.values(), key=lambda r: r["trial_id"])
        write_json(self.workdir / "trials.json", rows)
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=self.columns,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.workdir / "trials.csv", table.getvalue())

    def update(self, trial_id: str, **fields) -> dict:
        with self._locked():
            self.rows = self._read()
            row = self.rows.setdefault(trial_id, {"trial_id": trial_id})
            row.update({k: json_safe(v) for k, v in fields.items()})
            self._write()
            trial_dir = self.workdir / "trials" / trial_id
            trial_dir.mkdir(parents=True, exist_ok=True)
            write_json(trial_dir / "row.json", row)
            return dict(row)

    def consecutive_failures(self) -> int:
        """Failed trials since the last one that did not fail."""
        ended = sorted((r for r in self.rows.values() if r.get("ended_at")),
                       key=lambda r: r["ended_at"])
        count = 0
        for row in reversed(ended):
            if row["status"] != FAILED:
                break
            count += 1
        return count

    def finished(self) -> list[dict]:
        return [r for r in self.rows.values()
                if r["status"] in (COMPLETED, STOPPED_EARLY)]

    def best(self, objective: str, *, with_model: bool = False
             ) -> dict | None:
        """The finished trial with the best objective; with `with_model`,
        among those that exported a model (a trial a scheduler stopped
        did not)."""
        rows = [r for r in self.finished()
                if r.get("best_objective") is not None and not (
                    with_model and not (self.workdir / "trials"
                                        / r["trial_id"] / "model.keras"
                                        ).exists())]
        if not rows:
            return None
        sign = 1 if objective.endswith("loss") else -1
        return min(rows, key=lambda r: sign * r["best_objective"])


def summary_fields(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The results-table fields of a trial's `metrics.json`."""
    return {
        "best_objective": metrics["best_objective"],
        "best_epoch": metrics["best_epoch"],
        "stopped_epoch": metrics["epochs_run"],
        "epochs_run": metrics["epochs_run"],
        "final_accuracy_gap": metrics["final_accuracy_gap"],
        "accuracy_gap_at_best": metrics["accuracy_gap_at_best"],
        "gap_slope": metrics["gap_slope"],
        "overfit_onset_epoch": metrics["overfit_onset_epoch"],
        "verdict": metrics["verdict"],
        "best_val_accuracy": metrics["best_val_accuracy"],
        "best_val_loss": metrics["best_val_loss"],
        "test_accuracy": metrics["test_accuracy"],
        "wall_seconds": metrics["wall_seconds"],
    }


def failure_reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first}"[:300]


def format_top(table: ResultsTable, objective: str, n: int = 5) -> str:
    """The best `n` finished trials as an aligned text table."""
    sign = 1 if objective.endswith("loss") else -1
    rows = sorted((r for r in table.finished()
                   if r.get("best_objective") is not None),
                  key=lambda r: sign * r["best_objective"])[:n]
    headers = ["trial", objective, "epoch", "gap", "status", *table.keys]

    def show(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    lines = [[r["trial_id"], f"{r['best_objective']:.4f}",
              show(r.get("best_epoch")), show(r.get("final_accuracy_gap")),
              r["status"], *(show(r.get(k)) for k in table.keys)]
             for r in rows]
    widths = [max(len(h), *(len(cells[i]) for cells in lines))
              if lines else len(h) for i, h in enumerate(headers)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths))
                     .rstrip() for line in [headers, *lines])


class Progress:
    """Prints `trial k of N`, the best so far and the elapsed time."""

    def __init__(self, spec: StudySpec, table: ResultsTable, report):
        self.spec = spec
        self.table = table
        self.report = report
        self.started = time.perf_counter()

    def __call__(self, trial_id: str, event: str) -> None:
        best = self.table.best(self.spec.objective)
        best_text = (f"best {self.spec.objective} "
                     f"{best['best_objective']:.4f} (trial "
                     f"{best['trial_id']})" if best else "no best yet")
        done = len([r for r in self.table.rows.values()
                    if r["status"] != RUNNING])
        elapsed = int(time.perf_counter() - self.started)
        self.report(
            f"[trial {trial_id}: {event}] {done}/{self.spec.max_trials} "
            f"done, {best_text}, elapsed {elapsed // 60}m{elapsed % 60:02d}s")


def export_best(workdir: pathlib.Path, spec: StudySpec, table: ResultsTable,
                *, report) -> dict | None:
    """Writes `best/`: the best trial's hparams and end-to-end model.

    Without `spec.retrain_best` the best trial that exported a model is
    taken (a trial a scheduler stopped has none). With it, the best
    configuration of all is retrained on train + validation for its best
    epoch count, and that model exported.
    """
    best = table.best(spec.objective, with_model=not spec.retrain_best)
    if best is None:
        report("no trial finished; nothing to export")
        return None
    source = workdir / "trials" / best["trial_id"]
    out = workdir / "best"
    staging = workdir / "best.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    config = from_dict(json.loads((source / "config.json").read_text())[
        "config"])
    info = {"trial_id": best["trial_id"],
            "hyperparameters": {k: best.get(k) for k in table.keys
                                if best.get(k) is not None},
            spec.objective: best["best_objective"],
            "best_epoch": best["best_epoch"],
            "retrained_on_train_and_validation": spec.retrain_best,
            "config": config.to_dict()}
    if spec.retrain_best:
        from tuning.trial import retrain_on_train_and_validation

        metrics = retrain_on_train_and_validation(
            config, staging / "retrain", epochs=int(best["best_epoch"]),
            report=report)
        shutil.copy(staging / "retrain" / "model.keras", staging)
        shutil.copy(staging / "retrain" / "labels.txt", staging)
        info["retrain_metrics"] = {k: json_safe(v) for k, v in metrics.items()}
    else:
        shutil.copy(source / "model.keras", staging)
        shutil.copy(source / "labels.txt", staging)
    write_json(staging / "hparams.json", info)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    return info
