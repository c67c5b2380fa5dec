"""`best/ensemble/`: an ensemble of a study's best models, chosen on the
validation split, exported as one model.

    chosen = build_ensemble(workdir, spec, table, report=print)

Greedy ensemble selection with replacement (Caruana et al. 2004, as
AutoGluon and auto-sklearn build their final model): from the study's
finished models (search trials and confirmation reruns), the `spec.ensemble`
steps each add the model whose addition gives the averaged outputs the
best validation objective; a model may be added again (a larger weight),
so a weak one is never forced in. The members' outputs (probabilities, or
a regression's values) are averaged with those weights in one Keras model
that takes what each member takes (raw texts: each member keeps its own
vectorizer; or raw series values and lengths), so it loads with
`keras.models.load_model` after `import rnntune` and `rnntune predict`
works on it. Members are never retrained: a resumed study builds the same
ensemble from the same models.
"""

import collections
import pathlib
import shutil

import numpy as np

from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec
from tuning.trial.files import json_safe, write_json
from tuning.trial.run import FINISHED, RunDir, Status, StudyDir
from tuning.trial.verdict import best_first, minimizes

ENSEMBLE = "ensemble"  # the directory, in best/ or a comparison's workdir
MEMBERS = "members.json"
# The models the selection may draw from: the best this many.
POOL = 20


def validation_score(objective: str, outputs: np.ndarray,
                     labels: np.ndarray, *,
                     label_smoothing: float = 0.0) -> float:
    """The validation `objective` of a model's (or an average's) outputs,
    scored as a run scores its own (`optimization.score_outputs`); the
    task is told by the labels (float targets: a regression) and the
    outputs' width (one sigmoid unit: two classes)."""
    from tuning.trial.optimization import score_outputs

    num_classes = (0 if labels.dtype.kind == "f"
                   else 2 if outputs.shape[-1] == 1 else outputs.shape[-1])
    if num_classes == 0 and outputs.ndim == 2 and labels.ndim == 1:
        labels = labels[:, None]  # one value per example, as the model
    return score_outputs(objective, outputs, labels,
                         num_classes=num_classes,
                         label_smoothing=label_smoothing)


def select(outputs: dict[str, np.ndarray], labels: np.ndarray, *,
           objective: str, size: int, label_smoothing: float = 0.0
           ) -> list[str]:
    """`size` greedy steps with replacement over `outputs` (model name ->
    validation outputs, best single model first): the members, in the
    order added (repeats are weights). Ties go to the earlier model."""
    members: list[str] = []
    total = None
    for _ in range(size):
        best_name, best_value = None, None
        for name, out in outputs.items():
            mean = (out if total is None else total + out) / (len(members)
                                                              + 1)
            value = validation_score(objective, mean, labels,
                                     label_smoothing=label_smoothing)
            if best_value is None or (value < best_value
                                      if minimizes(objective)
                                      else value > best_value):
                best_name, best_value = name, value
        members.append(best_name)
        total = outputs[best_name] if total is None \
            else total + outputs[best_name]
    return members


def ensemble_model(models: dict[str, object], members: list[str],
                   *, regression: bool):
    """One Keras model averaging the `members`' outputs (a member listed
    twice counts twice), taking the inputs the members take."""
    import keras

    first = models[members[0]]
    if isinstance(first.input, dict):
        inputs = {name: keras.Input(shape=tensor.shape[1:],
                                    dtype=tensor.dtype, name=name)
                  for name, tensor in first.input.items()}
    else:
        inputs = keras.Input(shape=(), dtype="string", name="text")
    outputs = {}
    for i, name in enumerate(dict.fromkeys(members)):
        model = models[name]
        model.name = f"member_{i}"
        outputs[name] = model(inputs)
    averaged = [outputs[name] for name in members]
    out = (averaged[0] if len(averaged) == 1
           else keras.layers.Average(name="average")(averaged))
    return keras.Model(inputs, out, name="ensemble_regressor" if regression
                       else "ensemble")


def split_inputs(config, name: str) -> tuple | None:
    """The split `name` as the exported models take it (raw texts, or
    raw series values and lengths), and its labels; None if there is no
    such split."""
    from data_pipeline.sources import load_splits

    split = getattr(load_splits(config.data), name)
    if split is None:
        return None
    if config.data.kind == "series":
        from data_pipeline.series import pad_series

        values, lengths = pad_series(split.series)
        return {"values": values, "lengths": lengths}, split.labels
    return (np.asarray(list(split.texts), dtype=object),
            np.asarray(split.labels))


def candidates(workdir: pathlib.Path, spec: StudySpec,
               table: ResultsTable) -> list[dict]:
    """The rows of the finished models the selection draws from (search
    trials and confirmation reruns on the best's splits), best first."""
    study = StudyDir(workdir)
    rows = [r for r in table.rows.values()
            if r["status"] in FINISHED | {Status.CONFIRMED}
            and study.trial(r["trial_id"]).has_model()]
    ranked = best_first(rows, spec.objective,
                        lambda r: r.get("best_objective"))
    if not ranked:
        return []
    split = study.trial(ranked[0]["trial_id"]).read_config().data.split_key
    return [r for r in ranked if study.trial(r["trial_id"]).read_config()
            .data.split_key == split][:POOL]


def build_ensemble(workdir: pathlib.Path, spec: StudySpec,
                   table: ResultsTable, *, report) -> dict | None:
    """`export_ensemble` of the study's `candidates` into
    `best/ensemble/`; None (said) with fewer than two to draw from."""
    pool = candidates(workdir, spec, table)
    if len(pool) < 2:
        report(f"--ensemble {spec.ensemble}: {len(pool)} finished model(s); "
               "an ensemble needs two or more, so best/ stays the single "
               "best")
        return None
    study = StudyDir(workdir)
    return export_ensemble([study.trial(r["trial_id"]) for r in pool],
                           study.best.path / ENSEMBLE,
                           objective=spec.objective, size=spec.ensemble,
                           report=report)


def export_ensemble(runs: list[RunDir], out: pathlib.Path, *,
                    objective: str, size: int, report) -> dict:
    """Selects (`select`) among the finished `runs` (best single first,
    all on the same splits) on their validation outputs and writes `out`:
    the averaged model, its labels and config, and `members.json`, which
    says whether it beats the single best on validation.

    Returns:
        The `members.json` record (`chosen`: the ensemble is better).
    """
    import keras

    import rnntune  # noqa: F401  registers what exported models hold

    best_run = runs[0]
    config = best_run.read_config()
    inputs, labels = split_inputs(config, "validation")
    models, outputs = {}, {}
    for run in runs:
        models[run.name] = keras.models.load_model(run.model_path)
        outputs[run.name] = np.asarray(
            models[run.name].predict(inputs, verbose=0), np.float64)
    smoothing = config.train.label_smoothing
    members = select(outputs, labels, objective=objective, size=size,
                     label_smoothing=smoothing)
    weights = collections.Counter(members)
    ensemble_value = validation_score(
        objective, sum(outputs[m] for m in members) / len(members), labels,
        label_smoothing=smoothing)
    single_value = validation_score(objective, outputs[best_run.name],
                                    labels, label_smoothing=smoothing)
    better = (ensemble_value < single_value if minimizes(objective)
              else ensemble_value > single_value)
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ensemble_model(models, members, regression=config.data.task
                   != "classification").save(staging / RunDir.MODEL)
    for name in (RunDir.LABELS, RunDir.CONFIG):
        shutil.copy(best_run / name, staging)
    record = {
        "size": size, "objective": objective,
        "members": [{"run": name, "weight": count / len(members),
                     "times_chosen": count,
                     objective: json_safe(validation_score(
                         objective, outputs[name], labels,
                         label_smoothing=smoothing))}
                    for name, count in weights.most_common()],
        "selection_order": members, "pool": list(outputs),
        f"ensemble_{objective}": ensemble_value,
        f"single_best_{objective}": single_value,
        "single_best": best_run.name, "chosen": better,
        "why": (f"validation {objective}: ensemble {ensemble_value:.4f}, "
                f"single best ({best_run.name}) {single_value:.4f}; the "
                + ("ensemble" if better else "single model")
                + " is better, so it is the chosen model"),
    }
    write_json(staging / MEMBERS, record)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    report(f"ensemble of {len(weights)} model(s) in {size} steps "
           f"({', '.join(f'{n} x{c}' for n, c in weights.most_common())}): "
           + record["why"])
    return record


def test_ensemble(out: pathlib.Path, record: dict) -> dict:
    """The ensemble in `out` with its test figures (`RunMetrics`'
    `test_*` fields, under `test`), written into its `members.json`: the
    one test evaluation of a study or comparison whose ensemble is its
    model."""
    from tuning.trial.evaluate import score_exported

    config = RunDir(out).read_config()
    test = split_inputs(config, "test")
    classes = (out / RunDir.LABELS).read_text().split()
    figures = score_exported(out / RunDir.MODEL, test,
                             num_classes=len(classes),
                             label_smoothing=config.train.label_smoothing)
    record = {**record, "test": {k: json_safe(v) for k, v in
                                 figures.items()}}
    write_json(out / MEMBERS, record)
    return record
