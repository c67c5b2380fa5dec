"""`best/`: the chosen trial's configuration and end-to-end model."""

import dataclasses
import os
import pathlib
import shutil
from collections.abc import Callable

from tuning.study.confirm import confirmed
from tuning.study.ensemble import ENSEMBLE
from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec
from tuning.trial.config import Config
from tuning.trial.files import json_safe, write_json
from tuning.trial.run import (TABLE_TEST_FIELDS, TEST_FIELDS, RunDir,
                              RunMetrics, StudyDir)
from tuning.trial.verdict import best_first


def export_best(workdir: pathlib.Path, spec: StudySpec, table: ResultsTable,
                *, evaluate_chosen: Callable[[str], RunMetrics] | None,
                report) -> dict | None:
    """Writes `best/`: the best trial's hparams and end-to-end model, and
    the chosen model's test figures (the only ones the study measures).

    Without `spec.retrain_best` the best trial that exported a model is
    taken (a trial a scheduler stopped has none). With it, the best
    configuration of all is retrained on train + validation for its best
    epoch count, and that model exported. With confirmations
    (`spec.confirm_top`), `choose` says which. `evaluate_chosen(trial_id)`
    gives the chosen trial's metrics with its test figures
    (`TrialTrainer.evaluate_chosen`); None leaves the test split alone
    (an ensemble is the study's model, and it alone meets it).
    """
    best, confirmation = choose(workdir, spec, table)
    if best is None:
        report("no trial finished; nothing to export")
        return None
    study = StudyDir(workdir)
    source = study.trial(best["trial_id"])
    out = study.best.path
    staging = RunDir(out.with_name(out.name + ".tmp"))
    shutil.rmtree(staging.path, ignore_errors=True)
    staging.path.mkdir()
    config = source.read_config()
    info = {"trial_id": best["trial_id"],
            "hyperparameters": {k: best.get(k) for k in table.keys
                                if best.get(k) is not None},
            spec.objective: best["best_objective"],
            "best_epoch": best["best_epoch"],
            "retrained_on_train_and_validation": spec.retrain_best,
            "confirmation": confirmation,
            "config": config.to_dict()}
    if spec.retrain_best:
        retrained = RunDir(staging / StudyDir.RETRAINED)
        report(f"retraining trial {best['trial_id']}'s configuration on "
               f"train + validation for {int(best['best_epoch'])} epoch(s); "
               "its validation figures are on examples it trains on")
        metrics = retrain_on_train_and_validation(
            config, retrained, epochs=int(best["best_epoch"]), report=report)
        model_from = retrained
        # Only what validation did not decide: it was trained on.
        info["retrain_metrics"] = {
            k: json_safe(v) for k, v in metrics.to_dict().items()
            if not k.startswith(IN_SAMPLE)}
    else:
        metrics = evaluate_chosen and evaluate_chosen(best["trial_id"])
        model_from = source
    # config.json beside the model: `predict` reads the run's data
    # settings (a series' columns, a forecast's lookback) from it.
    for name in (RunDir.MODEL, RunDir.LABELS, RunDir.CONFIG):
        shutil.copy(model_from / name, staging.path)
    # The one test evaluation of the study: the chosen model's.
    if metrics:
        info.update({name: json_safe(getattr(metrics, name))
                     for name in TEST_FIELDS[metrics.task]})
    write_json(staging / StudyDir.BEST_RECORD, info)
    ensemble = out / ENSEMBLE  # built before, beside the single best
    if ensemble.is_dir():
        os.replace(ensemble, staging / ENSEMBLE)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging.path, out)
    mark_chosen(table, best["trial_id"], {
        name: info.get(name) for name in TABLE_TEST_FIELDS})
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
        study = StudyDir(workdir)
        runs = [r for r in runs
                if study.trial(r["trial_id"]).has_model()] or runs
    return best_first(runs, spec.objective,
                      lambda r: r["best_objective"])[0], group


def mark_chosen(table: ResultsTable, trial_id: str,
                figures: dict[str, float | None]) -> None:
    """Gives the chosen trial's row its test `figures` (the
    `TABLE_TEST_FIELDS`), and takes them from a trial chosen before (a
    resumed study may choose another)."""
    cleared = dict.fromkeys(figures)
    for row in list(table.rows.values()):
        if row["trial_id"] != trial_id and any(
                row.get(name) is not None for name in figures):
            table.update(row["trial_id"], **cleared)
    table.update(trial_id, **figures)



# A retrained run's figures read from the validation split it trained on.
IN_SAMPLE = ("objective", "best_", "accuracy_gap", "final_val_",
             "final_accuracy_gap", "final_loss_gap", "overfit_onset",
             "gap_slope", "verdict", "stopped_early")


def retrain_on_train_and_validation(config: Config, run: RunDir, *,
                                    epochs: int, report) -> RunMetrics:
    """Trains `config` on train + validation for `epochs` epochs into
    `run`.

    For exporting a chosen configuration: no early stopping and no best-
    epoch restore (there is no held-out validation left); the validation
    metrics it reports are on examples it trained on, and only the test
    metrics are held out. A forecast's training windows run on through
    the validation span.
    """
    import numpy as np

    from data_pipeline.sources import load_splits
    from tuning.trial.train import train_and_evaluate

    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, epochs=max(1, epochs), min_examples_seen=0,
        early_stopping_patience=0, restore_best_weights=False))
    if config.data.task == "forecast":
        from data_pipeline.forecast_arrays import ForecastArrays

        return train_and_evaluate(
            config, run.path, report=report, vectorized=ForecastArrays.build(
                config.data, validation_in_train=True))
    splits = load_splits(config.data)
    # Texts or series alike: each field of the two splits, end to end.
    merged = dataclasses.replace(splits, train=dataclasses.replace(
        splits.train, **{
            field.name: np.concatenate([getattr(splits.train, field.name),
                                        getattr(splits.validation,
                                                field.name)])
            for field in dataclasses.fields(splits.train)}))
    return train_and_evaluate(config, run.path, splits=merged, report=report)
