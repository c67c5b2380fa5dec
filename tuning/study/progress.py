"""The one-line progress of a study, printed as trials start and end."""

import time

from tuning.study.results import RUNNING, ResultsTable
from tuning.study.spec import StudySpec


class Progress:
    """Prints `trial k of N`, the best so far and the elapsed time."""

    def __init__(self, spec: StudySpec, table: ResultsTable, report):
        self.spec = spec
        self.table = table
        self.report = report
        self.started = time.perf_counter()

    def __call__(self, trial_id: str, event: str) -> None:
        best = self.table.best(self.spec.objective)
        best_text = (f"best {self.spec.objective} "
                     f"{best['best_objective']:.4f} (trial "
                     f"{best['trial_id']})" if best else "no best yet")
        done = len([r for r in self.table.rows.values()
                    if r["status"] != RUNNING])
        elapsed = int(time.perf_counter() - self.started)
        self.report(
            f"[trial {trial_id}: {event}] {done}/{self.spec.max_trials} "
            f"done, {best_text}, elapsed {elapsed // 60}m{elapsed % 60:02d}s")


