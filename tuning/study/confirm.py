"""Top-k confirmation: the best of many noisy trials is optimistic (the
winner's curse), so after the search the configurations of the
`spec.confirm_top` best trials train again with `spec.confirm_seeds` new
seeds each, and `best/` goes to the configuration with the best mean.

    confirm_top(spec, table, runner, report=print)

Each rerun is a trial of its own, `trials/<id>-seed<k>/` (its own
TensorBoard run and HParams session), recorded in the results table with
status `confirmed`, `confirms` naming the trial it reruns and `seed` its
`train.seed` (the trial's own plus k). A resumed study reruns only what
is missing. The reruns train in the study's own process, one after
another, on its `--devices`.
"""

import json
import statistics

from tuning.study.results import CONFIRMED, ResultsTable
from tuning.study.runner import TrialFailed, TrialRunner
from tuning.study.spec import StudySpec
from tuning.trial.config import from_dict
from tuning.trial.verdict import rank


def top_trials(table: ResultsTable, objective: str, k: int) -> list[dict]:
    """The `k` finished search trials with the best objective, best
    first."""
    return table.ranked(objective)[:k]


def confirmation_id(trial_id: str, k: int) -> str:
    return f"{trial_id}-seed{k}"


def confirm_top(spec: StudySpec, table: ResultsTable, runner: TrialRunner,
                *, report=print) -> None:
    """Trains every missing confirmation run of the top trials."""
    top = top_trials(table, spec.objective, spec.confirm_top)
    todo = [(row, k) for row in top
            for k in range(1, spec.confirm_seeds + 1)
            if table.rows.get(confirmation_id(row["trial_id"], k), {})
            .get("status") != CONFIRMED]
    if not todo:
        return
    report(f"confirming the top {len(top)} trial(s) with "
           f"{spec.confirm_seeds} new seed(s) each: {len(todo)} run(s) to "
           "go")
    for row, k in todo:
        trial_dir = runner.trial_dir(row["trial_id"])
        config = from_dict(json.loads((trial_dir / "config.json")
                                      .read_text())["config"])
        values = {key: row[key] for key in spec.space.keys if key in row}
        seed = config.train.seed + k
        run_id = confirmation_id(row["trial_id"], k)
        runner.start(run_id, values, confirms=row["trial_id"], seed=seed)
        try:
            metrics = runner.train(run_id, values,
                                   epochs=config.train.epochs,
                                   overrides={"train.seed": seed})
        except TrialFailed:
            continue  # recorded failed; the others still confirm
        runner.finish(run_id, CONFIRMED, f"confirms {row['trial_id']}",
                      metrics)


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
    return sorted(groups, key=lambda g: rank(objective, g["mean"]))


def format_confirmed(groups: list[dict], objective: str) -> str:
    """One line per confirmed trial: its search figure against the mean
    and standard deviation of its reruns."""
    return "\n".join(
        f"trial {g['trial_id']}: {objective} {g['objective']:.4f} in the "
        f"search, {g['mean']:.4f} +/- {g['std']:.4f} over {g['runs']} new "
        "seed(s)" for g in groups)
