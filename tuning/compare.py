"""Trains each cell type on the same data and tabulates the runs.

    rows = compare_cells(config, ["simple_rnn", "gru", "lstm"], "runs/cmp")

Writes `WORKDIR/<cell>/` (one trial each, see `tuning.trial.train`),
`WORKDIR/comparison.csv`, `WORKDIR/comparison.json` and
`WORKDIR/curves_<cell>.png`.
"""

import csv
import io
import math
import os
import pathlib
import time
from collections.abc import Sequence

import tensorflow as tf

from tuning.reporting.plots import plot_curves
from tuning.reporting.tables import GAP, format_table
from tuning.study.ensemble import ENSEMBLE, export_ensemble, test_ensemble
from tuning.trial.callbacks import Report
from tuning.trial.config import Config, apply_overrides
from tuning.trial.data import vectorized_data
from tuning.trial.files import format_duration, write_atomic, write_json
from tuning.trial.history import read_history
from tuning.trial.run import RunDir, RunMetrics
from tuning.trial.train import train_and_evaluate
from tuning.trial.verdict import best_first
from tuning.trial.workdir import finished_metrics, lock_workdir

# The table's columns, by `data.task`.
COLUMNS = {
    "classification": (
        "cell", "parameters", "best_val_accuracy", "best_epoch",
        "final_train_accuracy", "final_val_accuracy", "final_accuracy_gap",
        "seconds_per_epoch", "verdict", "chosen", "test_accuracy",
        "test_balanced_accuracy"),
    "regression": (
        "cell", "parameters", "best_val_loss", "best_val_mae",
        "best_val_rmse", "best_epoch", "final_train_loss", "final_val_loss",
        "final_loss_gap", "seconds_per_epoch", "verdict", "chosen",
        "test_loss", "test_mae", "test_rmse"),
}
COLUMNS["forecast"] = (*COLUMNS["regression"], "test_mape", "test_smape",
                       "test_mase")


def compare_cells(config: Config, cells: Sequence[str],
                  workdir: str | os.PathLike, *,
                  strategy: tf.distribute.Strategy | None = None,
                  report: Report = print,
                  status: Report | None = None,
                  ensemble: bool = False) -> list[dict]:
    """Runs one trial per cell, identical but for `model.cell`.

    Args:
        config: the shared configuration.
        cells: cell names, in the order to train them.
        workdir: the comparison's directory.
        strategy: distribution strategy for every trial.
        report: receives progress lines, each prefixed `[k/n cell]` with
            the elapsed time of the whole comparison.
        status: receives a live line within each epoch (a terminal's).
        ensemble: also build `WORKDIR/ensemble/`, the cells' models
            averaged by greedy selection on validation (as `tune
            --ensemble`, one step per cell); it is the comparison's chosen
            model, in a row of its own, if it beats the best cell on
            validation.

    Returns:
        One row per cell with the `COLUMNS` keys of its task (and the
        ensemble's, with `ensemble`).

    Raises:
        ConfigError, DataError, WorkdirError: before anything is written.
    """
    workdir = pathlib.Path(workdir)
    with lock_workdir(workdir, kind="comparison"):
        return _compare(config, cells, workdir, strategy=strategy,
                        report=report, status=status, ensemble=ensemble)


def _compare(config, cells, workdir, *, strategy, report,
             status, ensemble) -> list[dict]:
    configs = {cell: apply_overrides(config, {"model.cell": cell})
               for cell in cells}
    for cell, cell_config in configs.items():
        finished_metrics(RunDir(workdir / cell), cell_config)
    # Read and vectorized once (or opened from the data cache): every
    # cell trains on the same ids.
    data = vectorized_data(config, report=report)
    report(f"data: {data.info.description}; train {data.examples('train')}"
           f", validation {data.examples('validation')}, test "
           f"{data.examples('test') if 'test' in data.labels else 0}")
    started = time.perf_counter()
    columns = COLUMNS[config.data.task]
    rows, results = [], {}
    for k, (cell, cell_config) in enumerate(configs.items(), start=1):
        prefix = f"[{k}/{len(cells)} {cell}]"

        def cell_report(line, prefix=prefix):
            elapsed = format_duration(time.perf_counter() - started)
            report(f"{prefix} {line}  (elapsed {elapsed})")

        run = RunDir(workdir / cell)
        with lock_workdir(run.path, kind="run"):
            metrics = train_and_evaluate(
                cell_config, run.path, strategy=strategy, vectorized=data,
                report=cell_report, status=status and (
                    lambda text, prefix=prefix: status(f"{prefix} {text}")),
                evaluate_test=False)
        plot_curves(read_history(run.history_path),
                    workdir / f"curves_{cell}.png",
                    title=f"{cell}: train vs validation")
        results[cell] = metrics
        figures = metrics.to_dict()
        rows.append({"cell": cell, **{c: figures[c] for c in columns[1:]
                                      if c in figures}})
        cell_report(f"done: verdict {metrics.verdict} "
                    f"({metrics.verdict_reason})")
    choose(rows, results, configs, workdir, data,
           objective=config.train.objective, report=report,
           ensemble=ensemble)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(workdir / "comparison.csv", table.getvalue())
    write_json(workdir / "comparison.json", rows)
    return rows


def choose(rows: list[dict], results: dict[str, RunMetrics],
           configs: dict[str, Config], workdir: pathlib.Path, data, *,
           objective: str, report: Report, ensemble: bool = False) -> None:
    """Marks the row of the cell with the best validation objective (of
    its `results`, the metrics by cell) `chosen` and gives it, and it
    alone, test figures: the test split judges the choice and never
    makes it. With `ensemble`, the cells' ensemble is built (a row of its
    own) and, if it is better on validation, takes the best cell's
    place."""
    tests = [c for c in rows[0] if c.startswith("test_")] if rows else []
    for row in rows:
        row.update(chosen=False, **dict.fromkeys(tests, math.nan))
    ranked = best_first(
        [r for r in rows if not results[r["cell"]].diverged], objective,
        lambda r: results[r["cell"]].best_objective)
    if not ranked:
        return
    if ensemble and len(ranked) > 1:
        record = export_ensemble(
            [RunDir(workdir / r["cell"]) for r in ranked],
            workdir / ENSEMBLE, objective=objective, size=len(ranked),
            report=report)
        # Its own row whether chosen or not: its validation figure
        # beside the cells'.
        rows.append({**dict.fromkeys(rows[0], math.nan), "cell": ENSEMBLE,
                     "verdict": "-", "chosen": record["chosen"],
                     f"best_{objective}": record[f"ensemble_{objective}"]})
        if record["chosen"]:
            record = test_ensemble(workdir / ENSEMBLE, record)
            rows[-1].update({c: record["test"].get(c, math.nan)
                             for c in tests})
            name = "test_rmse" if "test_rmse" in tests else "test_accuracy"
            report(f"chosen by best {objective}: the ensemble, "
                   f"{name.replace('_', ' ').replace('rmse', 'RMSE')} "
                   f"{rows[-1][name]:.4f} (held out: it chose nothing)")
            return
    best = ranked[0]
    best["chosen"] = True
    cell = best["cell"]
    metrics = train_and_evaluate(
        configs[cell], workdir / cell, vectorized=data, evaluate_test=True,
        report=lambda line: None)
    best.update({c: getattr(metrics, c) for c in tests})
    name, value = metrics.test_figure
    report(f"chosen by best {objective}: {best['cell']}, {name} "
           f"{value:.4f} (held out: it chose nothing)")
    for line in metrics.forecast_lines():
        report(line)


def format_comparison(rows: Sequence[dict]) -> str:
    """The comparison as an aligned text table ("-" where a row has no
    such figure: the ensemble's trained no curves of its own)."""
    if rows and "test_rmse" in rows[0]:  # a regression
        return format_table(
            ("cell", "params", "best val loss", "val MAE", "val RMSE",
             "best epoch", "train loss", "val loss", "val/train", "s/epoch",
             "verdict", "test RMSE", "test MAE"),
            [[r["cell"], _num(r["parameters"], ","),
              _num(r["best_val_loss"], ".4g"), _num(r["best_val_mae"], ".4g"),
              _num(r["best_val_rmse"], ".4g"), _num(r["best_epoch"], ""),
              _num(r["final_train_loss"], ".4g"),
              _num(r["final_val_loss"], ".4g"),
              (f"{r['final_val_loss'] / r['final_train_loss']:.2f}x"
               if r["final_train_loss"] > 0 else "-"),
              _num(r["seconds_per_epoch"], ".2f"), r["verdict"],
              f"{r['test_rmse']:.4g} (chosen)" if r["chosen"] else "-",
              f"{r['test_mae']:.4g}" if r["chosen"] else "-"]
             for r in rows]) + "\n"
    return format_table(
        ("cell", "params", "best val acc", "best epoch", "train acc",
         "val acc", "gap", "s/epoch", "verdict", "test acc"),
        [[r["cell"], _num(r["parameters"], ","),
          _num(r["best_val_accuracy"], ".4f"), _num(r["best_epoch"], ""),
          _num(r["final_train_accuracy"], ".4f"),
          _num(r["final_val_accuracy"], ".4f"),
          _num(r["final_accuracy_gap"], GAP),
          _num(r["seconds_per_epoch"], ".2f"), r["verdict"],
          _test_accuracy(r) if r["chosen"] else "-"]
         for r in rows]) + "\n"


def _num(value, spec: str) -> str:
    """`value` formatted, "-" for NaN."""
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return format(value, spec)


def _test_accuracy(row: dict) -> str:
    """The chosen cell's test accuracy, with the balanced accuracy where
    the classes are uneven enough for the two to differ."""
    text = f"{row['test_accuracy']:.4f}"
    balanced = row.get("test_balanced_accuracy", math.nan)
    if abs(balanced - row["test_accuracy"]) >= 0.00005:
        text += f" (balanced {balanced:.4f})"
    return text + " (chosen)"
