"""`best/`: the chosen trial's configuration and end-to-end model."""

import json
import os
import pathlib
import shutil

from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec
from tuning.trial.config import from_dict
from tuning.trial.files import json_safe, write_json


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
        from tuning.trial.train import retrain_on_train_and_validation

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

