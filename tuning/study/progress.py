"""The one-line progress of a study, printed as trials start and end."""

import time

from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec
from tuning.trial.files import format_duration
from tuning.trial.run import Status


class Progress:
    """Prints trials done of N, the best so far, the elapsed time and an
    estimate of the time left (from the trials this process has seen end,
    which a resumed study's earlier ones are not)."""

    def __init__(self, spec: StudySpec, table: ResultsTable, report):
        self.spec = spec
        self.table = table
        self.report = report
        self.started = time.perf_counter()
        self._done_before = self._done()

    def _done(self) -> int:
        return len([r for r in self.table.searched()
                    if r["status"] != Status.RUNNING])

    def __call__(self, trial_id: str, event: str) -> None:
        best = self.table.best(self.spec.objective)
        best_text = (f"best {self.spec.objective} "
                     f"{best['best_objective']:.4f} (trial "
                     f"{best['trial_id']})" if best else "no best yet")
        done, total = self._done(), self.spec.max_trials
        elapsed = time.perf_counter() - self.started
        line = (f"[trial {trial_id}: {event}] {done}/{total} done, "
                f"{best_text}, elapsed {format_duration(elapsed)}")
        ended_here = done - self._done_before
        if 0 < ended_here and done < total:
            left = elapsed / ended_here * (total - done)
            line += f", about {format_duration(left)} left"
        self.report(line)
