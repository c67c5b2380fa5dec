"""Records a study's trials: their rows in the results table and their
TensorBoard HParams sessions, from the process that drives the search
(the in-process backends' own, or Ray's driver). It trains nothing:
`tuning.study.runner.TrialTrainer` does.
"""

import socket
import time
from collections.abc import Callable

from tuning.study.results import ResultsTable
from tuning.study.spec import StudySpec
from tuning.trial.run import RunMetrics, Status, StudyDir

# on_event(trial_id, event): after the table changed (a progress line).
OnEvent = Callable[[str, str], None]


class TrialRecorder:
    """Keeps the rows and HParams sessions of the study in `study`.

    Args:
        study: the study's directory.
        spec: the study.
        table: its results table.
        report: receives the trials' lines (for a backend that relays
            them, as Ray's driver does).
        on_event: called as `on_event(trial_id, event)` after the table
            changed (the progress line).
    """

    def __init__(self, study: StudyDir, spec: StudySpec,
                 table: ResultsTable, *, report=print,
                 on_event: OnEvent = lambda trial_id, event: None):
        self.study = study
        self.spec = spec
        self.table = table
        self.report = report
        self.on_event = on_event

    def start(self, trial_id: str, values, **fields) -> None:
        """Records the trial running (with `fields` in its row)."""
        active = self.spec.space.active(values)
        self.table.update(trial_id, status=Status.RUNNING, reason="",
                          node=socket.gethostname(), started_at=time.time(),
                          ended_at=None, **active, **fields)
        from tuning.study import hparams  # TensorFlow: where it records

        hparams.start_session(
            self.study.trial(trial_id).logs, trial_id, self.spec.space,
            values, hparams.derived_values(self.spec.trial_config(values)))
        self.on_event(trial_id, "started")

    def finish(self, trial_id: str, status: Status, reason: str = "",
               metrics: RunMetrics | None = None) -> None:
        """Records the trial ended with `status` (and its metrics' summary,
        when it has any)."""
        fields = metrics.summary() if metrics else {}
        self.table.update(trial_id, status=status, reason=reason,
                          ended_at=time.time(), **fields)
        from tuning.study import hparams

        hparams.end_session(self.study.trial(trial_id).logs, status, fields)
        self.on_event(trial_id, status + (f" ({reason})" if reason else ""))
