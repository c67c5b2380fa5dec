"""A run's contract: what it reports and where its files are.

    run = RunDir("runs/lstm")
    metrics = run.read_metrics()        # a RunMetrics, or None if unfinished
    status, reason = status_of(metrics)

`RunMetrics` is what one run reports (`metrics.json`); `RunDir` owns a
run's file names and `StudyDir` a study's. No other module spells these
names. `Status` is the closed set of a study's trial statuses. Plain
Python: reports and the command line read runs without TensorFlow.
"""

import dataclasses
import enum
import json
import math
import os
import pathlib
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from tuning.trial import verdict
from tuning.trial.files import write_json

NAN = math.nan


@dataclasses.dataclass(frozen=True)
class RunMetrics:
    """What one run reports, written last as `metrics.json`.

    NaN marks a figure the run has not got (a test split not evaluated,
    a run without a finished epoch).

    Attributes:
        task: `classification`, `regression` or `forecast` (whose runs
            have mean absolute and root mean squared errors, `*_mae` and
            `*_rmse`, where a classification has accuracies).
        status: `completed` or `diverged` (a NaN or infinite loss).
        objective: the validation metric the run chose its epoch by.
        best_objective: its value at the best epoch.
        best_epoch: the best epoch (1-based; 0: none).
        best_val_accuracy, best_val_loss, accuracy_gap_at_best: the best
            epoch's validation figures and train - validation accuracy.
        epochs_run: epochs trained.
        stopped_early: early stopping ended the run before its last
            planned epoch.
        final_*: the last epoch's figures.
        test_loss, test_accuracy: the exported model on the test split
            (`tuning.trial.evaluate`); NaN for a study's trials and a
            comparison's cells but the chosen one.
        test_balanced_accuracy: the mean of the per-class recalls on the
            test split (equal to accuracy where the classes are even).
        test_mape, test_smape, test_mase: a forecast's percentage errors
            and its MAE scaled by the in-sample seasonal-naive error
            (`data_pipeline.forecast.forecast_errors`).
        test_baselines: a forecast's trivial forecasts (naive, seasonal
            naive, drift) on the same test windows: name -> their
            `mae`, `rmse`, `mape`, `smape`, `mase`.
        parameters: the model's parameter count.
        seconds_per_epoch: median epoch time.
        overfit_onset_epoch, gap_slope, verdict, verdict_reason: the
            curves judged (`tuning.trial.verdict`).
        wall_seconds: the run's wall time, data preparation included.
    """

    status: str
    objective: str
    task: str = "classification"
    best_objective: float = NAN
    best_epoch: int = 0
    best_val_accuracy: float = NAN
    best_val_loss: float = NAN
    best_val_mae: float = NAN
    best_val_rmse: float = NAN
    accuracy_gap_at_best: float = NAN
    epochs_run: int = 0
    stopped_early: bool = False
    final_train_loss: float = NAN
    final_train_accuracy: float = NAN
    final_val_loss: float = NAN
    final_val_accuracy: float = NAN
    final_val_mae: float = NAN
    final_val_rmse: float = NAN
    final_accuracy_gap: float = NAN
    final_loss_gap: float = NAN
    test_loss: float = NAN
    test_accuracy: float = NAN
    test_balanced_accuracy: float = NAN
    test_mae: float = NAN
    test_rmse: float = NAN
    test_mape: float = NAN
    test_smape: float = NAN
    test_mase: float = NAN
    test_baselines: dict | None = None
    parameters: int = 0
    seconds_per_epoch: float = NAN
    overfit_onset_epoch: int | None = None
    gap_slope: float = NAN
    verdict: str = ""
    verdict_reason: str = ""
    wall_seconds: float = NAN

    def __post_init__(self):
        # One NaN object, so that metrics read back compare equal.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and math.isnan(value):
                object.__setattr__(self, field.name, NAN)

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def tested(self) -> bool:
        """Whether the test split has been evaluated."""
        return math.isfinite(self.test_loss)

    @property
    def regression(self) -> bool:
        """Whether the run predicts values (a regression or a forecast),
        judged by its errors rather than accuracies."""
        return self.task in ("regression", "forecast")

    @property
    def test_figure(self) -> tuple[str, float]:
        """The test figure a run is told by: `("test accuracy", ...)`, or
        for a regression `("test RMSE", ...)`, a forecast `("test MASE",
        ...)`."""
        field, words = test_figure_of(self.task)
        return words, getattr(self, field)

    @classmethod
    def from_history(cls, rows: Sequence[Mapping[str, float]], *,
                     objective: str, num_classes: int, stopped_early: bool,
                     parameters: int, baseline_loss: float = NAN,
                     task: str | None = None) -> "RunMetrics":
        """A run's metrics from its history rows, its curves judged
        (`tuning.trial.verdict`; `num_classes` 0 for a regression, whose
        train-mean predictor has `baseline_loss`; `task` says which, by
        default told from `num_classes`); test figures and wall time NaN
        until they are known."""
        figures = verdict.analyze(rows, num_classes=num_classes,
                                  objective=objective,
                                  baseline_loss=baseline_loss)
        top = verdict.best_row(rows, objective) or {}
        last = rows[-1] if rows else {}
        return cls(
            status="diverged" if figures["verdict"] == "diverged"
            else "completed",
            objective=objective,
            task=task or ("regression" if num_classes == 0
                          else "classification"),
            best_objective=top.get(objective, NAN),
            best_epoch=top.get("epoch", 0),
            best_val_accuracy=top.get("val_accuracy", NAN),
            best_val_loss=top.get("val_loss", NAN),
            best_val_mae=top.get("val_mae", NAN),
            best_val_rmse=top.get("val_rmse", NAN),
            accuracy_gap_at_best=top.get("accuracy_gap", NAN),
            epochs_run=len(rows),
            stopped_early=stopped_early,
            final_train_loss=last.get("loss", NAN),
            final_train_accuracy=last.get("accuracy", NAN),
            final_val_loss=last.get("val_loss", NAN),
            final_val_accuracy=last.get("val_accuracy", NAN),
            final_val_mae=last.get("val_mae", NAN),
            final_val_rmse=last.get("val_rmse", NAN),
            final_accuracy_gap=last.get("accuracy_gap", NAN),
            final_loss_gap=last.get("loss_gap", NAN),
            parameters=parameters,
            seconds_per_epoch=(statistics.median(r["seconds"] for r in rows)
                               if rows else NAN),
            overfit_onset_epoch=figures["overfit_onset_epoch"],
            gap_slope=figures["gap_slope"],
            verdict=figures["verdict"],
            verdict_reason=figures["verdict_reason"])

    def replace(self, **changes) -> "RunMetrics":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunMetrics":
        """The metrics of a `metrics.json` (null read as NaN; keys of
        other versions ignored)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                continue
            if value is None and known[key].type is float:
                value = NAN
            values[key] = value
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """The fields a study's results table and HParams keep."""
        return {key: getattr(self, key) for key in SUMMARY_FIELDS} | {
            "stopped_epoch": self.epochs_run}

    def describe(self) -> str:
        """One line summing up the run."""
        name, value = self.test_figure
        return (f"best {self.objective} {self.best_objective:.4f} at epoch "
                f"{self.best_epoch}, {name} {value:.4f}, verdict "
                f"{self.verdict}")

    def forecast_lines(self) -> list[str]:
        """A tested forecast's figures beside its trivial forecasts' on
        the same test windows (`forecast_table`); none otherwise."""
        if self.task != "forecast" or not self.test_baselines:
            return []
        return forecast_table({name: getattr(self, f"test_{name}")
                               for name in FORECAST_FIGURES},
                              self.test_baselines)


def test_figure_of(task: str) -> tuple[str, str]:
    """(field, words) of the test figure a run of `task` is told by."""
    return {"classification": ("test_accuracy", "test accuracy"),
            "regression": ("test_rmse", "test RMSE"),
            "forecast": ("test_mase", "test MASE")}[task]


# A forecast's test figures, as `forecast_table` prints them.
FORECAST_FIGURES = ("mae", "rmse", "mape", "smape", "mase")


def forecast_table(model: Mapping[str, float],
                   baselines: Mapping[str, Mapping[str, float]]
                   ) -> list[str]:
    """Lines of a table: the model's test MAE, RMSE, MAPE, sMAPE and MASE,
    then each trivial forecast's, so a reader sees at once whether the
    network beats them (MASE below 1 beats the in-sample seasonal naive
    forecast)."""
    rows = [("model", model), *baselines.items()]
    width = max(len(name) for name, _ in rows)

    def cell(figures, name):
        value = figures.get(name)
        if value is None or not math.isfinite(value):
            return "-"
        return f"{value:.2f}%" if name in ("mape", "smape") else f"{value:.4g}"

    lines = [f"{'test forecast':<{width + 2}}" + "".join(
        f"{name.upper():>10}" for name in FORECAST_FIGURES)]
    for name, figures in rows:
        lines.append(f"  {name:<{width}}" + "".join(
            f"{cell(figures, f):>10}" for f in FORECAST_FIGURES))
    return lines


# The fields of a run's metrics a study's results table holds (with
# `stopped_epoch`, the epoch it ended at).
SUMMARY_FIELDS = ("best_objective", "best_epoch", "epochs_run",
                  "final_accuracy_gap", "accuracy_gap_at_best", "gap_slope",
                  "overfit_onset_epoch", "verdict", "best_val_accuracy",
                  "best_val_loss", "best_val_mae", "best_val_rmse",
                  "test_accuracy", "test_rmse", "test_mase", "wall_seconds")


# A run's test figures, by task.
TEST_FIELDS = {
    "classification": ("test_loss", "test_accuracy",
                       "test_balanced_accuracy"),
    "regression": ("test_loss", "test_mae", "test_rmse"),
    "forecast": ("test_loss", "test_mae", "test_rmse", "test_mape",
                 "test_smape", "test_mase"),
}
# Those a study's results table holds (in `SUMMARY_FIELDS`).
TABLE_TEST_FIELDS = ("test_accuracy", "test_rmse", "test_mase")


class Status(enum.StrEnum):
    """A study trial's status, as its results table records it."""

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED_EARLY = "stopped early"
    FAILED = "failed"
    CONFIRMED = "confirmed"  # a top trial's configuration, a new seed


# The statuses of a search trial that ended with figures to rank.
FINISHED = frozenset({Status.COMPLETED, Status.STOPPED_EARLY})


def status_of(metrics: RunMetrics) -> tuple[Status, str]:
    """A finished run's status and the reason for it (empty when it
    completed)."""
    if metrics.diverged:
        return Status.FAILED, f"diverged: {metrics.verdict_reason}"
    if metrics.stopped_early:
        return Status.STOPPED_EARLY, "early stopping"
    return Status.COMPLETED, ""


class RunDir:
    """The files of one run, in `path` (`tuning.trial.train` writes them).

    Attributes:
        path: the run's directory.
    """

    CONFIG = "config.json"  # the resolved config and runtime
    METRICS = "metrics.json"  # written last: marks a finished run
    MODEL = "model.keras"  # the exported end-to-end model
    VOCABULARY = "vocabulary.txt"
    LABELS = "labels.txt"
    HISTORY = "history.csv"  # one row per finished epoch
    LOGS = "logs"  # TensorBoard event files
    ROW = "row.json"  # a study trial's results-table row
    FORECAST_PLOT = "forecast.png"  # a forecast's test span, drawn

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> pathlib.Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> pathlib.Path:
        return self.path / self.CONFIG

    @property
    def metrics_path(self) -> pathlib.Path:
        return self.path / self.METRICS

    @property
    def model_path(self) -> pathlib.Path:
        return self.path / self.MODEL

    @property
    def history_path(self) -> pathlib.Path:
        return self.path / self.HISTORY

    @property
    def logs(self) -> pathlib.Path:
        return self.path / self.LOGS

    def has_config(self) -> bool:
        return self.config_path.exists()

    def has_model(self) -> bool:
        return self.model_path.exists()

    def read_record(self) -> dict:
        """`config.json` whole: `{"config": ..., "runtime": ...}`.

        Raises:
            OSError, ValueError: missing or unreadable.
        """
        return json.loads(self.config_path.read_text())

    def read_config(self):
        """The run's config (a `tuning.trial.config.Config`).

        Raises:
            OSError: no `config.json`.
            ValueError, KeyError, ConfigError: an unreadable one.
        """
        from tuning.trial.config import from_dict

        return from_dict(self.read_record()["config"])

    def read_runtime(self) -> dict:
        return self.read_record().get("runtime") or {}

    def write_config(self, config, runtime: Mapping[str, Any]) -> None:
        write_json(self.config_path,
                   {"config": config.to_dict(), "runtime": dict(runtime)})

    def read_metrics(self) -> RunMetrics | None:
        """The finished run's metrics; None while it has not finished.

        Raises:
            ValueError: a damaged `metrics.json`.
        """
        try:
            text = self.metrics_path.read_text()
        except FileNotFoundError:
            return None
        return RunMetrics.from_dict(json.loads(text))

    def write_metrics(self, metrics: RunMetrics) -> None:
        """Writes `metrics.json` whole (it marks the run finished)."""
        write_json(self.metrics_path, metrics.to_dict())

    def forget_result(self) -> None:
        """Drops `config.json` and `metrics.json`: the run trains again
        (its state was replaced by another run's)."""
        for path in (self.config_path, self.metrics_path):
            path.unlink(missing_ok=True)


class StudyDir:
    """The files of a study, in `path` (see `tuning.study.spec`)."""

    SPEC = "study.json"
    RUNTIME = "runtime.json"
    PROVENANCE = "provenance.json"
    TRIALS_JSON = "trials.json"
    TRIALS_CSV = "trials.csv"
    TRIALS_LOCK = "trials.lock"
    TRIALS = "trials"
    BEST = "best"  # the chosen model
    BEST_RECORD = "hparams.json"  # in best/: the choice, and why
    RETRAINED = "retrain"  # in best/: the choice retrained (--retrain-best)
    LOGS = "logs"
    DATA_CACHE = "data_cache"  # the vectorized data its trials share

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)

    def __repr__(self) -> str:
        return f"StudyDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> pathlib.Path:
        return self.path / name

    def trial(self, trial_id: str) -> RunDir:
        return RunDir(self.path / self.TRIALS / trial_id)

    def trials(self) -> list[RunDir]:
        """Every trial directory, by id."""
        return [RunDir(p) for p in
                sorted((self.path / self.TRIALS).glob("*/"))]

    @property
    def best(self) -> RunDir:
        return RunDir(self.path / self.BEST)

    @property
    def retrained(self) -> RunDir:
        """The chosen configuration's run on train + validation
        (`--retrain-best`), whose model `best/` holds."""
        return RunDir(self.path / self.BEST / self.RETRAINED)

    def chosen_run(self, record: dict) -> RunDir:
        """The run whose model `best/` holds, from its record
        (`best/hparams.json`): the retrained one, or the chosen trial."""
        if record.get("retrained_on_train_and_validation"):
            return self.retrained
        return self.trial(record["trial_id"])

    @property
    def logs(self) -> pathlib.Path:
        """The HParams experiment's run."""
        return self.path / self.LOGS

    @property
    def data_cache(self) -> pathlib.Path:
        """The study's vectorized-data cache (`data_pipeline.cache`)."""
        return self.path / self.DATA_CACHE
