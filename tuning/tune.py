"""Runs or resumes a study with either backend.

    spec = StudySpec(base=config, space=get_space("cells"),
                     backend="keras-tuner", algorithm="random", max_trials=8)
    run_study("runs/study", spec)
    run_study("runs/study", None, resume=True)   # after an interruption
"""

import json
import os
import pathlib
import shlex
import shutil
import time

from data_pipeline.sources import DataInfo, load_splits
from tuning.reporting.tables import format_top
from tuning.study.export import export_best
from tuning.study.progress import Progress
from tuning.study.recorder import TrialRecorder
from tuning.study.results import ResultsTable
from tuning.study.runner import TrialFunction, TrialTrainer
from tuning.study.spec import (Runtime, StudySpec, load_runtime, load_spec,
                               save_runtime, save_spec)
from tuning.trial.config import ConfigError
from tuning.trial.files import write_json
from tuning.trial.provenance import provenance, versions
from tuning.trial.run import RunDir, StudyDir, test_figure_of
from tuning.trial.workdir import check_private, lock_workdir


def run_study(workdir: str | os.PathLike, spec: StudySpec | None, *,
              resume: bool = False, ray_address: str | None = None,
              runtime: Runtime | None = None, trust_study_dir: bool = False,
              report=print, status=None, verbose: bool = False,
              trial_function: TrialFunction | None = None) -> dict | None:
    """Runs the study to `spec.max_trials` trials, then exports the best.

    Args:
        workdir: the study's directory.
        spec: what to run; None with `resume` (read from `study.json`).
        resume: continue the study in `workdir`.
        ray_address: join this Ray cluster (Ray backend only).
        runtime: devices and trial packing (default: what the study last
            ran with, else one trial at a time on `auto` devices).
        trust_study_dir: resume even if other users could have changed
            the study's files (see `tuning.trial.workdir.check_private`).
        report: receives progress lines.
        status: receives a live line within each epoch of trials trained
            in this process (a terminal's); None for none.
        verbose: let Ray print its own output (configuration, checkpoints,
            the trials' lines) as well.
        trial_function: what trains each trial (see
            `tuning.study.runner.TrialTrainer`; default the real one). It
            runs in this process or Ray's, not in Keras Tuner worker
            processes.

    Returns:
        The best trial's `best/hparams.json` content, or None if no trial
        finished.

    Raises:
        ConfigError: a bad spec, or a workdir holding another study.
        WorkdirError: another process holds the workdir, or it holds
            another kind of job.
        DataError: the base config's data cannot be read.
        StudyFailed: too many consecutive trials failed.
    """
    workdir = pathlib.Path(workdir).absolute()
    with lock_workdir(workdir, kind="study"):
        if not trust_study_dir and (resume or (workdir / StudyDir.SPEC)
                                    .exists()):
            check_private(workdir)
        return _run(workdir, spec, resume=resume, ray_address=ray_address,
                    runtime=runtime, report=report, status=status,
                    verbose=verbose, trial_function=trial_function)


# Searched keys whose every value a study's widest entry holds.
def _cache_data(workdir, spec, splits, report) -> DataInfo:
    """Vectorizes the study's data into its data cache, once, before the
    first trial: at the largest vocabulary and length the space can ask
    for, from which every trial's entry is derived without the corpus (a
    trial whose other `data.*` values differ builds its own there).
    Numeric series are small: each trial's process prepares its own."""
    if not spec.base.data.cache or spec.base.data.kind == "series":
        return DataInfo.of(splits)
    from data_pipeline.cache import DataCache

    cache = DataCache(StudyDir(workdir).data_cache, report=report)
    cache.open(spec.widest_data(), splits=splits)
    return cache.open(spec.base.data).info


def _check_vectors(spec: StudySpec) -> None:
    """Refuses a base config whose word vectors cannot start its
    embedding, before anything is written (as `train` does): else every
    trial fails alike. A space searching the file or the width leaves
    the check to each trial."""
    model = spec.base.model
    searched = set(spec.space.keys)
    if model.pretrained_embeddings and not searched & {
            "model.pretrained_embeddings", "model.embedding_dim"}:
        from data_pipeline.vectors import check_width

        check_width(model.pretrained_embeddings, model.embedding_dim)


def _run(workdir, spec, *, resume, ray_address, runtime, report, status,
         verbose, trial_function):
    if resume:
        spec = load_spec(workdir)
        report(f"resuming the study in {workdir}")
    elif (workdir / StudyDir.SPEC).exists():
        if _search_part(load_spec(workdir)) != _search_part(spec):
            raise ConfigError(
                f"{workdir} holds another study; resume it with "
                f"`rnntune tune --resume --workdir {shlex.quote(str(workdir))}"
                "` or choose "
                "another --workdir")
        report(f"{workdir} holds this study already; resuming it")
        if load_spec(workdir).to_dict() != spec.to_dict():
            save_spec(workdir, spec)  # only what follows the search changed
        resume = True
    backend = _backend(spec.backend)  # before anything is written
    if runtime and runtime.ship_data and spec.base.data.kind == "series":
        raise ConfigError(
            "--ship-data: ships vectorized text; a study of numeric series "
            "reads them in each trial (a series file is small: put it where "
            "every node can read it, or use an embedded set)")
    for note in spec.space.notes():
        report(f"note: {note}")
    if not resume:
        # Bad data fails here (a forecast's windows are checked whole).
        forecast = splits = None
        if spec.base.data.task == "forecast":
            from data_pipeline.cache import open_vectorized

            forecast = open_vectorized(spec.base.data).info
        else:
            splits = load_splits(spec.base.data)
        _check_vectors(spec)
        workdir.mkdir(parents=True, exist_ok=True)
        from tuning.study import hparams

        hparams.write_experiment(workdir, spec.space,
                                 task=spec.base.data.task)
        save_spec(workdir, spec)
        # Once per study (each trial's config.json has its own too).
        write_json(workdir / StudyDir.PROVENANCE,
                   provenance(forecast or _cache_data(workdir, spec, splits,
                                                      report)))
    else:
        record_versions_on_resume(workdir, report=report)
    runtime = runtime or load_runtime(workdir)
    save_runtime(workdir, runtime)
    table = ResultsTable(workdir, spec.space)
    progress = Progress(spec, table, report)
    backend.run(workdir, spec, table, progress, resume=resume,
                address=ray_address, runtime=runtime, report=report,
                status=status, verbose=verbose,
                trial_function=trial_function)
    table.refresh()
    if spec.confirm_top:
        _confirm(workdir, spec, table, runtime, report, status,
                 trial_function)
    report("")
    report(f"top trials by {spec.objective}:")
    report(format_top(table, spec.objective))
    if spec.confirm_top:
        from tuning.study.confirm import confirmed, format_confirmed

        report("")
        report("confirmed with new seeds (best/ takes the best mean):")
        report(format_confirmed(confirmed(table, spec.objective),
                                spec.objective))
    tester = TrialTrainer(StudyDir(workdir), spec, report=report,
                          trial_function=trial_function)
    from tuning.study.ensemble import ENSEMBLE, build_ensemble

    ensemble = (build_ensemble(workdir, spec, table, report=report)
                if spec.ensemble else None)
    if ensemble is None:  # an earlier run's, with another --ensemble
        shutil.rmtree(StudyDir(workdir).best.path / ENSEMBLE,
                      ignore_errors=True)
    chosen = bool(ensemble and ensemble["chosen"])
    best = export_best(workdir, spec, table,
                       evaluate_chosen=None if chosen
                       else tester.evaluate_chosen, report=report)
    if best and chosen:
        return _record_ensemble(workdir, spec, best, ensemble, report)
    if best:
        study = StudyDir(workdir)
        field, name = test_figure_of(spec.base.data.task)
        test = best.get(field)
        report(f"best: trial {best['trial_id']} ({spec.objective} "
               f"{best[spec.objective]:.4f}), {name} "
               + ("-" if test is None else f"{test:.4f}")
               + " (held out: it chose nothing), model "
               f"{shlex.quote(str(study.best.model_path))}")
        chosen = study.chosen_run(best).read_metrics()
        for line in (chosen.forecast_lines() if chosen else []):
            report(line)
    return best


def _record_ensemble(workdir: pathlib.Path, spec, best: dict,
                     ensemble: dict, report) -> dict:
    """Tests the ensemble that is the study's model, and records it as
    the choice in `best/hparams.json`."""
    from tuning.study.ensemble import ENSEMBLE, test_ensemble

    ensemble = test_ensemble(StudyDir(workdir).best.path / ENSEMBLE,
                             ensemble)
    name, words = test_figure_of(spec.base.data.task)
    study = StudyDir(workdir)
    best = {**best, **ensemble["test"], "chosen_model": "ensemble",
            "ensemble": ensemble}
    write_json(study.best / study.BEST_RECORD, best)
    value = best.get(name)
    report(f"best: the ensemble ({spec.objective} "
           f"{ensemble[f'ensemble_{spec.objective}']:.4f} on validation), "
           f"{words} "
           + ("-" if value is None else f"{value:.4f}")
           + " (held out: it chose nothing), model "
           + shlex.quote(str(RunDir(study.best.path / ENSEMBLE).model_path)))
    return best


def record_versions_on_resume(workdir: pathlib.Path, *, report) -> None:
    """Adds today's versions to `provenance.json` when they differ from
    those the study started (or last resumed) with, and says so."""
    path = workdir / StudyDir.PROVENANCE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # a study from before provenance was recorded
    now = versions()
    earlier = (record.get("resumed_with") or [record])[-1]["versions"]
    if now != earlier:
        changed = ", ".join(f"{k} {earlier.get(k)} -> {v}"
                            for k, v in now.items() if earlier.get(k) != v)
        report(f"note: resuming with other versions than before: {changed}")
        record.setdefault("resumed_with", []).append(
            {"at": time.time(), "versions": now})
        write_json(path, record)


# What may change when a finished or interrupted study is run again: the
# steps after the search (an ensemble is chosen again from the same
# models, none retrained).
AFTER_SEARCH = ("confirm_top", "confirm_seeds", "ensemble")


def _search_part(spec: StudySpec) -> dict:
    return {k: v for k, v in spec.to_dict().items() if k not in AFTER_SEARCH}


def _confirm(workdir, spec, table, runtime, report, status,
             trial_function) -> None:
    """Trains the top trials' confirmation runs in this process."""
    from tuning.study.confirm import confirm_top

    strategy = None
    if trial_function is None:
        from tuning.trial.devices import make_strategy, parse_devices

        strategy = make_strategy(parse_devices(runtime.devices))
    study = StudyDir(workdir)
    recorder = TrialRecorder(study, spec, table, on_event=lambda trial_id,
                             event: report(f"[trial {trial_id}: {event}]"))
    trainer = TrialTrainer(study, spec, report=report, strategy=strategy,
                           status=status, trial_function=trial_function)
    confirm_top(spec, table, recorder, trainer, report=report)
    table.refresh()


def _backend(name: str):
    """The backend's module, or a `ConfigError` saying which extra
    installs it (the base install serves train and compare only)."""
    try:
        if name == "ray":
            from tuning.backends import ray_tune as backend
        else:
            from tuning.backends import keras_tuner as backend
    except ImportError as e:
        raise ConfigError(str(e)) from None
    return backend
