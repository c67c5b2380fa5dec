"""`best/`: the chosen trial's configuration and end-to-end model."""

import json
import os
import pathlib
import shutil
from collections.abc import Callable

from tuning.study.confirm import confirmed
from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec
from tuning.trial.config import from_dict
from tuning.trial.files import json_safe, write_json
from tuning.trial.verdict import rank


def export_best(workdir: pathlib.Path, spec: StudySpec, table: ResultsTable,
                *, evaluate_chosen: Callable[[str], dict],
                report) -> dict | None:
    """Writes `best/`: the best trial's hparams and end-to-end model, and
    the chosen model's test accuracy (the only one the study measures).

    Without `spec.retrain_best` the best trial that exported a model is
    taken (a trial a scheduler stopped has none). With it, the best
    configuration of all is retrained on train + validation for its best
    epoch count, and that model exported. With confirmations
    (`spec.confirm_top`), `choose` says which. `evaluate_chosen(trial_id)`
    gives the chosen trial's metrics with its test figures
    (`TrialRunner.evaluate_chosen`).
    """
    best, confirmation = choose(workdir, spec, table)
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
            "confirmation": confirmation,
            "config": config.to_dict()}
    if spec.retrain_best:
        from tuning.trial.train import retrain_on_train_and_validation

        metrics = retrain_on_train_and_validation(
            config, staging / "retrain", epochs=int(best["best_epoch"]),
            report=report)
        shutil.copy(staging / "retrain" / "model.keras", staging)
        shutil.copy(staging / "retrain" / "labels.txt", staging)
        info["retrain_metrics"] = {k: json_safe(v) for k, v in metrics.items()}
    else:
        metrics = evaluate_chosen(best["trial_id"])
        shutil.copy(source / "model.keras", staging)
        shutil.copy(source / "labels.txt", staging)
    # The one test evaluation of the study: the chosen model's.
    info["test_accuracy"] = json_safe(metrics["test_accuracy"])
    info["test_loss"] = json_safe(metrics["test_loss"])
    write_json(staging / "hparams.json", info)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    mark_chosen(table, best["trial_id"], info["test_accuracy"])
    return info


def choose(workdir: pathlib.Path, spec: StudySpec, table: ResultsTable
           ) -> tuple[dict | None, dict | None]:
    """The trial whose model `best/` takes, and the confirmation figures
    that chose its configuration (None without confirmations).

    With confirmations, the configuration with the best mean over its
    new seeds wins, and of its runs (the trial and its reruns) the one
    with the best validation objective gives the model."""
    groups = confirmed(table, spec.objective) if spec.confirm_top else []
    if not groups:
        return table.best(spec.objective,
                          with_model=not spec.retrain_best), None
    group = groups[0]
    runs = [table.rows[group["trial_id"]],
            *table.confirmations(group["trial_id"])]
    if not spec.retrain_best:
        runs = [r for r in runs if (workdir / "trials" / r["trial_id"]
                                    / "model.keras").exists()] or runs
    return min(runs, key=lambda r: rank(spec.objective,
                                        r["best_objective"])), group


def mark_chosen(table: ResultsTable, trial_id: str,
                test_accuracy: float | None) -> None:
    """Gives the chosen trial's row its test accuracy, and takes it from
    a trial chosen before (a resumed study may choose another)."""
    for row in list(table.rows.values()):
        if row["trial_id"] != trial_id and row.get("test_accuracy") is not None:
            table.update(row["trial_id"], test_accuracy=None)
    table.update(trial_id, test_accuracy=test_accuracy)

