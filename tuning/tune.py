"""Runs or resumes a study with either backend.

    spec = StudySpec(base=config, space=get_space("cells"),
                     backend="keras-tuner", algorithm="random", max_trials=8)
    run_study("runs/study", spec)
    run_study("runs/study", None, resume=True)   # after an interruption
"""

import os
import pathlib

from data_pipeline.sources import load_splits
from tuning.config import ConfigError
from tuning.study import (Progress, ResultsTable, StudySpec, export_best,
                          format_top, load_spec, save_spec)


def run_study(workdir: str | os.PathLike, spec: StudySpec | None, *,
              resume: bool = False, ray_address: str | None = None,
              report=print) -> dict | None:
    """Runs the study to `spec.max_trials` trials, then exports the best.

    Args:
        workdir: the study's directory.
        spec: what to run; None with `resume` (read from `study.json`).
        resume: continue the study in `workdir`.
        ray_address: join this Ray cluster (Ray backend only).
        report: receives progress lines.

    Returns:
        The best trial's `best/hparams.json` content, or None if no trial
        finished.

    Raises:
        ConfigError: a bad spec, or a workdir holding another study.
        DataError: the base config's data cannot be read.
        StudyFailed: too many consecutive trials failed.
    """
    workdir = pathlib.Path(workdir)
    if resume:
        spec = load_spec(workdir)
        report(f"resuming the study in {workdir}")
    elif (workdir / "study.json").exists():
        if load_spec(workdir).to_dict() != spec.to_dict():
            raise ConfigError(
                f"{workdir} holds another study; resume it with "
                f"`rnntune tune --resume --workdir {workdir}` or choose "
                "another --workdir")
        report(f"{workdir} holds this study already; resuming it")
        resume = True
    if not resume:
        load_splits(spec.base.data)  # fail on bad data before writing
        workdir.mkdir(parents=True, exist_ok=True)
        from tuning import hparams_log

        hparams_log.write_experiment(workdir, spec.space)
        save_spec(workdir, spec)
    table = ResultsTable(workdir, spec.space)
    progress = Progress(spec, table, report)
    if spec.backend == "keras-tuner":
        from tuning import kt_backend
        from tuning.runner import TrialRunner

        runner = TrialRunner(workdir, spec, table, report=report,
                             on_event=progress)
        kt_backend.run(workdir, runner)
    else:
        from tuning import ray_backend

        ray_backend.run(workdir, spec, table, progress, resume=resume,
                        address=ray_address, report=report)
    report("")
    report(f"top trials by {spec.objective}:")
    report(format_top(table, spec.objective))
    best = export_best(workdir, spec, table, report=report)
    if best:
        report(f"best: trial {best['trial_id']}, model "
               f"{workdir / 'best' / 'model.keras'}")
    return best
