"""Overfitting report for any workdir that train, compare or tune wrote.

    report = build_report("runs/study")
    print(format_text(report)); write_outputs(report, "runs/study")

(`format_text` and `write_outputs` are in `tuning.reporting.render`.)

Curves are read from the runs' TensorBoard event files with TensorBoard's
own reader; a study's results table adds statuses and hyperparameters.
"""

import json
import math
import pathlib
import statistics

from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator)
from tensorboard.util import tensor_util

from tuning.reporting.tables import format_value
from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec, load_spec
from tuning.trial import verdict
from tuning.trial.config import ConfigError
from tuning.trial.files import json_safe
from tuning.trial.run import RunDir, Status, StudyDir, test_figure_of

NUMERIC_BINS = 6  # above this many distinct values, split at the median


def find_runs(workdir: pathlib.Path) -> list[pathlib.Path]:
    """Run directories under `workdir` (those with a config.json and a
    history.csv: not the training checkpoints, which hold a history too),
    the exported best model's retraining excluded."""
    runs = [p.parent for p in workdir.rglob(RunDir.HISTORY)
            if StudyDir.BEST not in p.relative_to(workdir).parts[:1]
            and (p.parent / RunDir.CONFIG).is_file()]
    return sorted(runs)


def _series(logdir: pathlib.Path, tag: str) -> dict[int, float]:
    if not logdir.is_dir():
        return {}
    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    events.Reload()
    if tag not in events.Tags().get("tensors", []):
        return {}
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto))
            for e in events.Tensors(tag)}


def read_curves(run: pathlib.Path) -> list[dict[str, float]]:
    """Per-epoch train and validation loss and accuracy (a regression's
    mean absolute and root mean squared errors instead) from the run's
    TensorBoard files (`logs/train`, `logs/validation`); a figure the run
    does not record is NaN."""
    logs = RunDir(run).logs
    series = {f"{prefix}{name}": _series(logs / split, f"epoch_{name}")
              for prefix, split in (("", "train"), ("val_", "validation"))
              for name in ("loss", "accuracy", "mae", "rmse")}
    recorded = [s for s in series.values() if s]
    steps = sorted(set.intersection(*(set(s) for s in recorded))
                   if recorded else ())
    return [{"epoch": step + 1, **{k: s.get(step, math.nan)
                                   for k, s in series.items()}}
            for step in steps]


def _flat_config(run: pathlib.Path) -> dict:
    """The run's config as flat keys; {} if it has none or it is
    unreadable (a run killed while writing it)."""
    try:
        config = RunDir(run).read_record().get("config") or {}
    except (OSError, ValueError):
        config = {}
    return {f"{s}.{k}": v for s, d in config.items() for k, v in d.items()}


def _num_classes(run: pathlib.Path) -> int:
    """The run's classes (0: a regression, whose labels file is empty)."""
    labels = RunDir(run) / RunDir.LABELS
    return len(labels.read_text().split()) if labels.exists() else 2


def _baseline_loss(run: pathlib.Path) -> float:
    """A regression's train-mean predictor loss, as its run recorded it
    (NaN if it did not)."""
    try:
        runtime = RunDir(run).read_record().get("runtime") or {}
    except (OSError, ValueError):
        return math.nan
    return float(runtime.get("baseline_loss") or math.nan)


def _study(workdir: pathlib.Path) -> tuple[StudySpec | None, dict]:
    """The spec and results table of a study, read as resuming it reads
    them: a damaged `trials.json` is rebuilt from `trials.csv` or the
    trial directories (`ResultsTable`).

    Returns:
        `(None, {})` for a workdir that holds no study.

    Raises:
        ConfigError: `study.json` is unreadable, or missing beside a
            results table.
    """
    study = StudyDir(workdir)
    if not (study / study.SPEC).exists():
        for name in (study.TRIALS_JSON, study.TRIALS_CSV):
            if (study / name).exists():
                raise ConfigError(f"{workdir}: {name} without "
                                  f"{study.SPEC} (the study's space and "
                                  "objective)")
        return None, {}
    spec = load_spec(workdir)
    return spec, ResultsTable(workdir, spec.space).rows


def _run_name(run: pathlib.Path, workdir: pathlib.Path) -> str:
    """A run's name: its path under `workdir`, or the directory's own
    name for a workdir that is a run (`.` and `runs/x/` included)."""
    relative = run.relative_to(workdir)
    return str(relative) if relative.parts else (
        workdir.resolve().name or str(workdir.resolve()))


def _objective(spec: StudySpec | None, configs: dict) -> str:
    """What ranks the runs: the study's objective, else the runs' own
    (`train.objective`) when they share one."""
    if spec is not None:
        return spec.objective
    objectives = {c.get("train.objective") for c in configs.values()}
    objectives.discard(None)
    return objectives.pop() if len(objectives) == 1 else "val_accuracy"


def build_report(workdir: str | pathlib.Path) -> dict:
    """Analyses every run under `workdir`.

    Raises:
        ConfigError: `workdir` holds no run, or a study whose spec is
            unreadable.
    """
    workdir = pathlib.Path(workdir)
    if not workdir.is_dir():
        raise ConfigError(f"{workdir}: " + ("a file, not a directory"
                                           if workdir.exists()
                                           else "no such directory"))
    spec, table = _study(workdir)
    runs = find_runs(workdir)
    if not runs and not table:
        raise ConfigError(f"{workdir}: no runs found (no {RunDir.HISTORY} "
                          "below it); point --workdir at what train, "
                          "compare or tune wrote")
    configs = {run: _flat_config(run) for run in runs}
    keys = sorted({k for c in configs.values() for k in c})
    varying = [k for k in keys
               if len({json.dumps(c.get(k)) for c in configs.values()}) > 1]
    if spec is not None:
        varying = list(spec.space.keys)
    objective = _objective(spec, configs)
    entries = []
    tasks = set()
    for run in runs:
        rows = read_curves(run)
        num_classes = _num_classes(run)
        tasks.add("regression" if num_classes == 0 else "classification")
        figures = verdict.analyze(rows, num_classes=num_classes,
                                  objective=objective,
                                  baseline_loss=_baseline_loss(run))
        best = (verdict.best_row(rows, objective)
                if figures["best_epoch"] is not None else None)
        row = (table.get(run.name, {}) if spec else {}) or (
            {"status": Status.COMPLETED}
            if (run / RunDir.METRICS).is_file() else
            {"status": Status.RUNNING, "reason": "unfinished: interrupted, "
             "or still training"})
        entries.append({
            "run": _run_name(run, workdir),
            "status": row["status"],
            "reason": row.get("reason", ""),
            "hyperparameters": {k: (row.get(k) if spec
                                    else configs[run].get(k))
                                for k in varying},
            "curves": rows,
            "best_objective": json_safe(best[objective]) if best else None,
            **{k: json_safe(v) for k, v in figures.items()},
        })
    seen = {pathlib.Path(e["run"]).name for e in entries}
    for trial_id, row in sorted(table.items()):
        if trial_id not in seen:  # failed before its first epoch
            entries.append({
                "run": f"{StudyDir.TRIALS}/{trial_id}",
                "status": row["status"],
                "reason": row.get("reason", ""),
                "hyperparameters": {k: row.get(k) for k in varying},
                "curves": [], "best_objective": None, "epochs": 0,
                "verdict": "unknown",  # no epoch to judge
                "verdict_reason": row.get("reason", ""),
                "best_epoch": None, "best_val_accuracy": None,
                "best_val_rmse": None, "accuracy_gap_at_best": None,
                "final_accuracy_gap": None, "gap_at_best": None,
                "final_gap": None, "overfit_onset_epoch": None,
                "gap_slope": None})
    kind = "study" if spec else ("compare" if len(runs) > 1 else "train")
    task = ("regression" if tasks == {"regression"}
            or (spec and spec.base.data.task == "regression")
            else "classification")
    return {"workdir": str(workdir), "kind": kind, "task": task,
            "rules": verdict.RULES, "objective": objective,
            "hyperparameters": varying, "runs": entries,
            "groups": _groups(entries, varying, task),
            "top": _top(entries, objective),
            "chosen": _chosen(workdir, kind, entries, task, forecast=any(
                c.get("data.task") == "forecast" for c in configs.values()))}


def _read_json(path: pathlib.Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _chosen(workdir: pathlib.Path, kind: str, entries, task: str, *,
            forecast: bool = False) -> dict | None:
    """The chosen model and its test accuracy (a regression's test RMSE;
    a forecast's MASE, with the table of its test figures beside the
    trivial forecasts'), the only test figure a study or a comparison
    measures: `best/` of a study, the comparison's chosen cell, or a
    training run itself."""
    if kind == "study":
        study = StudyDir(workdir)
        info = _read_json(study.best / study.BEST_RECORD) or {}
        run = (str(study.chosen_run(info).path.relative_to(workdir))
               if "trial_id" in info else None)
        if info.get("chosen_model") == "ensemble":
            run = "best/ensemble"
    elif kind == "compare":
        rows = _read_json(workdir / "comparison.json") or []
        info = next((r for r in rows if r.get("chosen")), {})
        run = info.get("cell")
    else:
        info = _read_json(RunDir(workdir).metrics_path) or {}
        run = entries[0]["run"] if entries else None
    name, _ = test_figure_of("forecast" if forecast else task)
    test = json_safe(info.get(name))
    if run is None or test is None:
        return None
    chosen = {"run": run, name: test}
    if forecast:
        found = RunDir(workdir if kind == "train" else workdir / run
                       ).read_metrics()
        chosen["forecast"] = found.forecast_lines() if found else []
    return chosen


def ranked_runs(entries, objective: str) -> list[dict]:
    """The runs with a best `objective`, best first, then the rest."""
    return verdict.best_first(entries, objective,
                              lambda e: e["best_objective"]) + [
        e for e in entries if e["best_objective"] is None]


def _top(entries, objective: str, n: int = 5) -> list[dict]:
    """The best `n` runs by `objective`."""
    ranked = [e for e in ranked_runs(entries, objective)
              if e["best_objective"] is not None]
    return [{k: e[k] for k in ("run", "best_objective", "best_val_accuracy",
                               "best_val_rmse", "best_epoch",
                               "final_accuracy_gap", "final_gap",
                               "verdict", "hyperparameters")}
            for e in ranked[:n]]


def _bins(values: list) -> dict:
    """Value -> group label: each value, or two halves of many numbers."""
    distinct = sorted({v for v in values if v is not None},
                      key=lambda v: (str(type(v)), v))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                  for v in distinct)
    if not numeric or len(distinct) <= NUMERIC_BINS:
        return {v: format_value(v) for v in distinct}
    median = statistics.median(distinct)
    return {v: (f"<= {median:.3g}" if v <= median else f"> {median:.3g}")
            for v in distinct}


def _groups(entries, keys, task: str = "classification"
            ) -> dict[str, list[dict]]:
    """Per hyperparameter: per value (or range), the runs' verdicts, the
    share that overfit, mean best validation accuracy (a regression's
    RMSE) and final gap."""
    score = "best_val_rmse" if task == "regression" else "best_val_accuracy"
    out = {}
    for key in keys:
        labels = _bins([e["hyperparameters"].get(key) for e in entries])
        groups: dict[str, list] = {}
        for e in entries:
            value = e["hyperparameters"].get(key)
            label = labels.get(value, "inactive") if value is not None \
                else "inactive"
            groups.setdefault(label, []).append(e)
        rows = []
        for label, members in groups.items():
            verdicts = {}
            for e in members:
                verdicts[e["verdict"]] = verdicts.get(e["verdict"], 0) + 1

            def mean(field, members=members):
                vals = [e[field] for e in members if e.get(field) is not None]
                return statistics.fmean(vals) if vals else None

            rows.append({"value": label, "runs": len(members),
                         "verdicts": verdicts,
                         "overfitting_share": verdicts.get("overfitting", 0)
                         / len(members),
                         f"mean_{score}": mean(score),
                         "mean_final_gap": mean("final_gap")})
        out[key] = sorted(rows, key=lambda r: -r["overfitting_share"])
    return out
