"""Top-k confirmation: the best of many noisy trials is optimistic (the
winner's curse), so after the search the configurations of the
`spec.confirm_top` best trials train again with `spec.confirm_seeds` new
seeds each, and `best/` goes to the configuration with the best mean.

    confirm_top(spec, table, recorder, trainer, report=print)

Each rerun is a trial of its own, `trials/<id>-seed<k>/` (its own
TensorBoard run and HParams session), recorded in the results table with
status `confirmed`, `confirms` naming the trial it reruns and `seed` its
`train.seed` (the trial's own plus k). A resumed study reruns only what
is missing. The reruns train in the study's own process, one after
another, on its `--devices`.
"""

import statistics

from tuning.study.recorder import TrialRecorder
from tuning.study.results import ResultsTable
from tuning.study.runner import TrialFailed, TrialTrainer, failed
from tuning.study.spec import StudySpec
from tuning.trial.run import Status
from tuning.trial.verdict import best_first


def top_trials(table: ResultsTable, objective: str, k: int) -> list[dict]:
    """The `k` finished search trials with the best objective, best
    first."""
    return table.ranked(objective)[:k]


def confirmation_id(trial_id: str, k: int) -> str:
    return f"{trial_id}-seed{k}"


def confirm_top(spec: StudySpec, table: ResultsTable,
                recorder: TrialRecorder, trainer: TrialTrainer, *,
                report=print) -> None:
    """Trains every missing confirmation run of the top trials."""
    top = top_trials(table, spec.objective, spec.confirm_top)
    todo = [(row, k) for row in top
            for k in range(1, spec.confirm_seeds + 1)
            if table.rows.get(confirmation_id(row["trial_id"], k), {})
            .get("status") != Status.CONFIRMED]
    if not todo:
        return
    report(f"confirming the top {len(top)} trial(s) with "
           f"{spec.confirm_seeds} new seed(s) each: {len(todo)} run(s) to "
           "go")
    for row, k in todo:
        config = trainer.study.trial(row["trial_id"]).read_config()
        values = {key: row[key] for key in spec.space.keys if key in row}
        seed = config.train.seed + k
        run_id = confirmation_id(row["trial_id"], k)
        recorder.start(run_id, values, confirms=row["trial_id"], seed=seed)
        try:
            metrics = trainer.train(run_id, values,
                                    epochs=config.train.epochs,
                                    overrides={"train.seed": seed})
        except TrialFailed as e:
            recorder.finish(run_id, *failed(e))
            continue  # the others still confirm
        recorder.finish(run_id, Status.CONFIRMED,
                        f"confirms {row['trial_id']}", metrics)


def confirmed(table: ResultsTable, objective: str) -> list[dict]:
    """Each confirmed trial's figures, best mean first: `trial_id`, its
    search `objective`, and over its confirmation runs `runs`, `mean`,
    `std` (0 for one run) and `values` (by run id)."""
    groups = []
    for row in table.finished():
        runs = table.confirmations(row["trial_id"])
        values = {r["trial_id"]: r["best_objective"] for r in runs
                  if r.get("best_objective") is not None}
        if not values:
            continue
        figures = list(values.values())
        groups.append({
            "trial_id": row["trial_id"], "objective": row["best_objective"],
            "runs": len(figures), "mean": statistics.mean(figures),
            "std": statistics.stdev(figures) if len(figures) > 1 else 0.0,
            "values": values})
    return best_first(groups, objective, lambda g: g["mean"])


def format_confirmed(groups: list[dict], objective: str) -> str:
    """One line per confirmed trial: its search figure against the mean
    and standard deviation of its reruns."""
    return "\n".join(
        f"trial {g['trial_id']}: {objective} {g['objective']:.4f} in the "
        f"search, {g['mean']:.4f} +/- {g['std']:.4f} over {g['runs']} new "
        "seed(s)" for g in groups)
