"""The overfitting report for a person: a terminal's text, `report.json`,
`report.html` and the gap-against-hyperparameters plot.

    report = build_report("runs/study")
    print(format_text(report)); write_outputs(report, "runs/study")
"""

import base64
import html
import json
import pathlib

from tuning.reporting.report import ranked_runs
from tuning.reporting.tables import GAP, format_table
from tuning.trial import verdict


def _fmt(value, spec=".3f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


RUN_HEADERS = ("run", "status", "verdict", "best val acc", "best ep",
               "gap@best", "gap@end", "overfit from", "gap slope")


# What a run is told by, by task: (report field, column heading). A
# regression's gap is validation / train loss - 1 (`verdict.gap`).
SCORES = {"classification": ("best_val_accuracy", "best val acc"),
          "regression": ("best_val_rmse", "best val RMSE")}


def _run_headers(objective: str, task: str) -> tuple[str, ...]:
    """`RUN_HEADERS` (with the task's score), with a column for an
    objective other than that score (the runs are ranked by it)."""
    field, heading = SCORES[task]
    headers = (*RUN_HEADERS[:3], heading, *RUN_HEADERS[4:])
    if objective == field.removeprefix("best_"):
        return headers
    return (*headers[:3], f"best {objective.replace('_', ' ')}",
            *headers[3:])


def _run_cells(e, objective: str, task: str) -> list[str]:
    field = SCORES[task][0]
    ranked_by = ([] if objective == field.removeprefix("best_")
                 else [_fmt(e["best_objective"], ".4f")])
    return [e["run"], e["status"], e["verdict"], *ranked_by,
            _fmt(e[field], ".4f"), _fmt(e["best_epoch"]),
            _fmt(e["gap_at_best"], GAP), _fmt(e["final_gap"], GAP),
            _fmt(e["overfit_onset_epoch"]), _fmt(e["gap_slope"], GAP)]


def format_text(report: dict, *, max_runs: int = 20) -> str:
    """The report for a terminal: runs, which settings overfit, top runs."""
    objective, task = report["objective"], report.get("task",
                                                      "classification")
    field, heading = SCORES[task]
    entries = ranked_runs(report["runs"], objective)
    lines = [f"{report['workdir']}: {len(entries)} run(s)", ""]
    shown = entries[:max_runs]
    lines.append(format_table(_run_headers(objective, task),
                              [_run_cells(e, objective, task)
                               for e in shown]))
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
            ("value", "runs", "overfitting", f"mean {heading}",
             "mean final gap"),
            [[g["value"], str(g["runs"]), f"{g['overfitting_share']:.0%}",
              _fmt(g[f"mean_{field}"], ".4f"),
              _fmt(g["mean_final_gap"], GAP)] for g in groups])]
    if report.get("chosen"):
        lines += ["", _chosen_line(report["chosen"]),
                  *report["chosen"].get("forecast", [])]
    lines += ["", report["rules"]]
    return "\n".join(lines)


def _chosen_line(chosen: dict) -> str:
    name, value = next((words, chosen[field]) for field, words in (
        ("test_mase", "test MASE"), ("test_rmse", "test RMSE"),
        ("test_accuracy", "test accuracy")) if field in chosen)
    return (f"chosen: {chosen['run']}, {name} {value:.4f} (the held-out "
            "test split, which took part in no choice)")


def _png_base64(path: pathlib.Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def plot_gap_vs_hyperparameters(report: dict, path: pathlib.Path) -> bool:
    """Final accuracy gap against each hyperparameter, one panel each."""
    keys = report["hyperparameters"]
    regression = report.get("task") == "regression"
    points = [e for e in report["runs"] if e.get("final_gap") is not None]
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
        ax.scatter(xs, [e["final_gap"] for e in points],
                   c=[colors.get(e["verdict"], "gray") for e in points])
        ax.axhline(verdict.gap_threshold(0 if regression else 2),
                   color="tab:red", lw=0.8, ls="--")
        ax.set_xlabel(key)
        ax.set_ylabel("final val / train loss - 1" if regression
                      else "final train - val accuracy")
    fig.suptitle(("loss" if regression else "accuracy")
                 + " gap against hyperparameters (red: overfitting)")
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
    objective, task = report["objective"], report.get("task",
                                                      "classification")
    field, heading = SCORES[task]
    entries = ranked_runs(report["runs"], objective)
    rows = "".join(
        f'<tr class="run" data-run="{esc(e["run"])}" '
        f'data-verdict="{esc(e["verdict"])}">'
        + "".join(f"<td>{esc(c)}</td>"
                  for c in _run_cells(e, objective, task))
        + "</tr>"
        for e in entries)
    groups = "".join(
        f"<h3>by {esc(key)}</h3><table><tr><th>value</th><th>runs</th>"
        f"<th>overfitting</th><th>mean {esc(heading)}</th><th>mean final gap"
        "</th></tr>" + "".join(
            f"<tr><td>{esc(g['value'])}</td><td>{g['runs']}</td>"
            f"<td>{g['overfitting_share']:.0%}</td>"
            f"<td>{_fmt(g[f'mean_{field}'], '.4f')}</td>"
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
    if (report.get("chosen") or {}).get("forecast"):
        chosen += ('<pre id="forecast">'
                   + esc("\n".join(report["chosen"]["forecast"])) + "</pre>")
    headers = _run_headers(objective, task)
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
