"""Overfitting report for any workdir that train, compare or tune wrote.

    report = build_report("runs/study")
    print(format_text(report)); write_outputs(report, "runs/study")

Curves are read from the runs' TensorBoard event files with TensorBoard's
own reader; a study's results table adds statuses and hyperparameters.
"""

import base64
import html
import json
import pathlib
import statistics

from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator)
from tensorboard.util import tensor_util

from tuning.reporting.tables import GAP, format_table, format_value
from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec, load_spec
from tuning.trial import verdict
from tuning.trial.config import ConfigError
from tuning.trial.files import json_safe
from tuning.trial.run import RunDir, StudyDir

NUMERIC_BINS = 6  # above this many distinct values, split at the median


def find_runs(workdir: pathlib.Path) -> list[pathlib.Path]:
    """Run directories under `workdir` (those with a history.csv), the
    exported best model's retraining excluded."""
    runs = [p.parent for p in workdir.rglob(RunDir.HISTORY)
            if StudyDir.BEST not in p.relative_to(workdir).parts[:1]]
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
    """Per-epoch train and validation loss and accuracy from the run's
    TensorBoard files (`logs/train`, `logs/validation`)."""
    logs = RunDir(run).logs
    series = {
        "loss": _series(logs / "train", "epoch_loss"),
        "accuracy": _series(logs / "train", "epoch_accuracy"),
        "val_loss": _series(logs / "validation", "epoch_loss"),
        "val_accuracy": _series(logs / "validation", "epoch_accuracy"),
    }
    steps = sorted(set.intersection(*(set(s) for s in series.values())))
    return [{"epoch": step + 1, **{k: s[step] for k, s in series.items()}}
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
    labels = RunDir(run) / RunDir.LABELS
    return len(labels.read_text().split()) if labels.exists() else 2


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
        raise ConfigError(f"{workdir}: no such directory")
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
    for run in runs:
        rows = read_curves(run)
        figures = verdict.analyze(rows, num_classes=_num_classes(run),
                                  objective=objective)
        best = (verdict.best_row(rows, objective)
                if figures["best_epoch"] is not None else None)
        row = table.get(run.name, {}) if spec else {}
        entries.append({
            "run": _run_name(run, workdir),
            "status": row.get("status", "completed"),
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
                "verdict": "diverged"
                if row["status"] == "failed" else "unknown",
                "verdict_reason": row.get("reason", ""),
                "best_epoch": None, "best_val_accuracy": None,
                "accuracy_gap_at_best": None, "final_accuracy_gap": None,
                "overfit_onset_epoch": None, "gap_slope": None})
    kind = "study" if spec else ("compare" if len(runs) > 1 else "train")
    return {"workdir": str(workdir), "kind": kind, "rules": verdict.RULES,
            "objective": objective, "hyperparameters": varying,
            "runs": entries, "groups": _groups(entries, varying),
            "top": _top(entries, objective),
            "chosen": _chosen(workdir, kind, entries)}


def _read_json(path: pathlib.Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _chosen(workdir: pathlib.Path, kind: str, entries) -> dict | None:
    """The chosen model and its test accuracy, the only test figure a
    study or a comparison measures: `best/` of a study, the comparison's
    chosen cell, or a training run itself."""
    if kind == "study":
        study = StudyDir(workdir)
        info = _read_json(study.best / study.BEST_RECORD) or {}
        run = (f"{study.TRIALS}/{info['trial_id']}" if "trial_id" in info
               else None)
    elif kind == "compare":
        rows = _read_json(workdir / "comparison.json") or []
        info = next((r for r in rows if r.get("chosen")), {})
        run = info.get("cell")
    else:
        info = _read_json(RunDir(workdir).metrics_path) or {}
        run = entries[0]["run"] if entries else None
    test = json_safe(info.get("test_accuracy"))
    if run is None or test is None:
        return None
    return {"run": run, "test_accuracy": test}


def _ranked(entries, objective: str) -> list[dict]:
    """The runs with a best `objective`, best first, then the rest."""
    return verdict.best_first(entries, objective,
                              lambda e: e["best_objective"]) + [
        e for e in entries if e["best_objective"] is None]


def _top(entries, objective: str, n: int = 5) -> list[dict]:
    """The best `n` runs by `objective`."""
    ranked = [e for e in _ranked(entries, objective)
              if e["best_objective"] is not None]
    return [{k: e[k] for k in ("run", "best_objective", "best_val_accuracy",
                               "best_epoch", "final_accuracy_gap",
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


def _groups(entries, keys) -> dict[str, list[dict]]:
    """Per hyperparameter: per value (or range), the runs' verdicts, the
    share that overfit, mean best validation accuracy and final gap."""
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
                         "mean_best_val_accuracy": mean("best_val_accuracy"),
                         "mean_final_gap": mean("final_accuracy_gap")})
        out[key] = sorted(rows, key=lambda r: -r["overfitting_share"])
    return out


def _fmt(value, spec=".3f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


RUN_HEADERS = ("run", "status", "verdict", "best val acc", "best ep",
               "gap@best", "gap@end", "overfit from", "gap slope")


def _run_headers(objective: str) -> tuple[str, ...]:
    """`RUN_HEADERS`, with a column for an objective other than
    validation accuracy (the runs are ranked by it)."""
    if objective == "val_accuracy":
        return RUN_HEADERS
    return (*RUN_HEADERS[:3], f"best {objective.replace('_', ' ')}",
            *RUN_HEADERS[3:])


def _run_cells(e, objective: str) -> list[str]:
    ranked_by = ([] if objective == "val_accuracy"
                 else [_fmt(e["best_objective"], ".4f")])
    return [e["run"], e["status"], e["verdict"], *ranked_by,
            _fmt(e["best_val_accuracy"], ".4f"), _fmt(e["best_epoch"]),
            _fmt(e["accuracy_gap_at_best"], GAP),
            _fmt(e["final_accuracy_gap"], GAP),
            _fmt(e["overfit_onset_epoch"]), _fmt(e["gap_slope"], GAP)]


def format_text(report: dict, *, max_runs: int = 20) -> str:
    """The report for a terminal: runs, which settings overfit, top runs."""
    objective = report["objective"]
    entries = _ranked(report["runs"], objective)
    lines = [f"{report['workdir']}: {len(entries)} run(s)", ""]
    shown = entries[:max_runs]
    lines.append(format_table(_run_headers(objective),
                              [_run_cells(e, objective) for e in shown]))
    if len(entries) > max_runs:
        lines.append(f"... {len(entries) - max_runs} more in report.json")
    overfit = [e for e in entries if e["verdict"] == "overfitting"]
    lines += ["", f"overfitting: {len(overfit)} of {len(entries)}" + (
        ": " + ", ".join(
            f"{e['run']} (from epoch {e['overfit_onset_epoch']})"
            if e["overfit_onset_epoch"] else e["run"]
            for e in overfit[:8]) if overfit else "")]
    for key, groups in report["groups"].items():
        lines += ["", f"by {key}:", format_table(
            ("value", "runs", "overfitting", "mean best val acc",
             "mean final gap"),
            [[g["value"], str(g["runs"]), f"{g['overfitting_share']:.0%}",
              _fmt(g["mean_best_val_accuracy"], ".4f"),
              _fmt(g["mean_final_gap"], GAP)] for g in groups])]
    if report.get("chosen"):
        lines += ["", _chosen_line(report["chosen"])]
    lines += ["", report["rules"]]
    return "\n".join(lines)


def _chosen_line(chosen: dict) -> str:
    return (f"chosen: {chosen['run']}, test accuracy "
            f"{chosen['test_accuracy']:.4f} (the held-out test split, which "
            "took part in no choice)")


def _png_base64(path: pathlib.Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def plot_gap_vs_hyperparameters(report: dict, path: pathlib.Path) -> bool:
    """Final accuracy gap against each hyperparameter, one panel each."""
    keys = report["hyperparameters"]
    points = [e for e in report["runs"]
              if e.get("final_accuracy_gap") is not None]
    if not keys or not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(max(6, 4 * len(keys)), 3.5),
                             squeeze=False, constrained_layout=True)
    colors = {"overfitting": "tab:red", "healthy": "tab:green",
              "underfitting": "tab:blue", "diverged": "black"}
    for ax, key in zip(axes[0], keys):
        xs = [e["hyperparameters"].get(key) for e in points]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool)
                      for x in xs if x is not None)
        if not numeric:
            names = sorted({json.dumps(x) for x in xs})
            xs = [names.index(json.dumps(x)) for x in xs]
            ax.set_xticks(range(len(names)), names, rotation=20)
        ax.scatter(xs, [e["final_accuracy_gap"] for e in points],
                   c=[colors.get(e["verdict"], "gray") for e in points])
        ax.axhline(verdict.OVERFIT_GAP, color="tab:red", lw=0.8, ls="--")
        ax.set_xlabel(key)
        ax.set_ylabel("final train - val accuracy")
    fig.suptitle("accuracy gap against hyperparameters (red: overfitting)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_outputs(report: dict, workdir: str | pathlib.Path) -> dict:
    """Writes report.json, report.html and PNGs under `workdir/report/`.

    Returns:
        The paths written, by kind.
    """
    from tuning.reporting.plots import plot_curves

    out = pathlib.Path(workdir) / "report"
    out.mkdir(exist_ok=True)
    images = {}
    for e in report["runs"]:
        if e["curves"]:
            png = out / ("curves_" + e["run"].replace("/", "_") + ".png")
            plot_curves(e["curves"], png,
                        title=f"{e['run']}: {e['verdict']}")
            images[e["run"]] = png
    gap_png = out / "gap_vs_hyperparameters.png"
    has_gap = plot_gap_vs_hyperparameters(report, gap_png)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.html").write_text(_html(report, images,
                                           gap_png if has_gap else None))
    return {"html": out / "report.html", "json": out / "report.json",
            "png": sorted(images.values()) + ([gap_png] if has_gap else [])}


def _html(report, images, gap_png) -> str:
    esc = html.escape
    objective = report["objective"]
    entries = _ranked(report["runs"], objective)
    rows = "".join(
        f'<tr class="run" data-run="{esc(e["run"])}" '
        f'data-verdict="{esc(e["verdict"])}">'
        + "".join(f"<td>{esc(c)}</td>" for c in _run_cells(e, objective))
        + "</tr>"
        for e in entries)
    groups = "".join(
        f"<h3>by {esc(key)}</h3><table><tr><th>value</th><th>runs</th>"
        "<th>overfitting</th><th>mean best val acc</th><th>mean final gap"
        "</th></tr>" + "".join(
            f"<tr><td>{esc(g['value'])}</td><td>{g['runs']}</td>"
            f"<td>{g['overfitting_share']:.0%}</td>"
            f"<td>{_fmt(g['mean_best_val_accuracy'], '.4f')}</td>"
            f"<td>{_fmt(g['mean_final_gap'], GAP)}</td></tr>"
            for g in groups) + "</table>"
        for key, groups in report["groups"].items())
    gap = (f'<h2>Gap against hyperparameters</h2><img alt="gap" '
           f'src="data:image/png;base64,{_png_base64(gap_png)}">'
           if gap_png else "")
    curves = "".join(
        f'<figure data-run="{esc(run)}"><img alt="{esc(run)}" '
        f'src="data:image/png;base64,{_png_base64(png)}">'
        f"<figcaption>{esc(run)}</figcaption></figure>"
        for run, png in images.items())
    chosen = (f'<p id="chosen">{esc(_chosen_line(report["chosen"]))}</p>'
              if report.get("chosen") else "")
    headers = _run_headers(objective)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rnntune report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; font-size: 13px; }}
tr[data-verdict="overfitting"] td {{ background: #fde2e2; }}
tr[data-verdict="healthy"] td {{ background: #e3f6e3; }}
figure {{ display: inline-block; margin: 0.5em; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Overfitting report: {esc(report['workdir'])}</h1>
<p>{len(entries)} run(s), {report['kind']}.</p>
<h2>Runs</h2>
<table id="runs"><tr>{''.join(f'<th>{esc(h)}</th>' for h in headers)}
</tr>{rows}</table>
{chosen}
<p id="rules">{esc(report['rules'])}</p>
<h2>Which settings go with overfitting</h2>{groups}
{gap}
<h2>Train against validation</h2>{curves}
</body></html>
"""
