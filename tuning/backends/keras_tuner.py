"""Keras Tuner backend: oracles pick values, `TrialTrainer` trains.

    run(workdir, spec, table, progress, resume=False, runtime=Runtime())

Hyperband's later rounds continue their parent trial's training (its kept
state) rather than starting over. The tuner's directory,
`WORKDIR/keras_tuner/study`, stays a normal Keras Tuner project:
`keras_tuner` reopens it (`results_summary()` and all). A study killed
mid-trial resumes with the interrupted trial (Keras Tuner retries it under
the same id) continuing from its last finished epoch, which is the trial
workdir's backup.
"""

import contextlib
import io
import json
import pathlib

try:
    import keras_tuner as kt
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("the keras-tuner backend needs the keras-tuner "
                      "package: pip install 'rnntune[keras-tuner]'") from e

from tuning.study.progress import Progress
from tuning.study.recorder import TrialRecorder
from tuning.study.results import ResultsTable
from tuning.study.runner import (TrialFailed, TrialFunction, TrialTrainer,
                                 run_trial)
from tuning.study.space import SearchSpace
from tuning.study.spec import Runtime, StudyFailed, StudySpec
from tuning.trial.files import write_atomic
from tuning.trial.run import StudyDir
from tuning.trial.state import TrainingState

PROJECT = "study"
HYPERBAND_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket",
                  "tuner/round", "tuner/trial_id")


def hyperparameters(space: SearchSpace) -> "kt.HyperParameters":
    """The space as Keras Tuner hyperparameters, conditions included."""
    hps = kt.HyperParameters()
    for d in space.dimensions:
        def declare(d=d):
            if d.kind == "choice" and set(d.values) == {False, True} and all(
                    isinstance(v, bool) for v in d.values):
                # Choice would store booleans as the integers 0 and 1.
                hps.Boolean(d.key)
            elif d.kind == "choice":
                hps.Choice(d.key, list(d.values))
            elif d.kind == "int":
                hps.Int(d.key, int(d.low), int(d.high),
                        step=None if d.log else int(d.step or 1),
                        sampling="log" if d.log else "linear")
            else:
                hps.Float(d.key, float(d.low), float(d.high),
                          step=d.step, sampling="log" if d.log else "linear")
        if d.when:
            with hps.conditional_scope(d.when[0], list(d.when[1])):
                declare()
        else:
            declare()
    return hps


ENDED = ("COMPLETED", "FAILED", "INVALID", "STOPPED")


def _readable_json(path: pathlib.Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


# SafeFiles overrides or calls these methods of `kt.Oracle`, most of them
# private, as Keras Tuner 1.4 defines them (pyproject.toml pins 1.4.x);
# tests/test_keras_tuner_api.py fails, naming the method, when the installed
# release defines one otherwise.
KERAS_TUNER_SERIES = "1.4"
ORACLE_METHODS = {
    "save": "(self)",
    "_save_trial": "(self, trial)",
    "reload": "(self)",
    "get_state": "(self)",
    "_get_oracle_fname": "(self)",
    "_get_trial_dir": "(self, trial_id)",
    "_compute_values_hash": "(self, values)",
}


class SafeFiles:
    """Keras Tuner's files written whole (aside, then renamed), so a kill
    never leaves half of one; an unreadable `oracle.json` is rebuilt from
    the trials' own `trial.json` files on reload."""

    def save(self):
        write_atomic(pathlib.Path(self._get_oracle_fname()),
                     json.dumps(self.get_state()))

    def _save_trial(self, trial):
        path = pathlib.Path(self._get_trial_dir(trial.trial_id))
        write_atomic(path / "trial.json", json.dumps(trial.get_state()))

    def reload(self):
        path = pathlib.Path(self._get_oracle_fname())
        if not _readable_json(path):
            write_atomic(path, json.dumps(self._rebuilt_state()))
        super().reload()

    def _rebuilt_state(self) -> dict:
        """The oracle's state from its trial files: every trial kept, the
        unfinished ones retried. A Hyperband oracle plans its brackets
        anew."""
        trials = []
        for path in sorted(pathlib.Path(self._project_dir).glob(
                "trial_*/trial.json")):
            try:
                trials.append(kt.engine.trial.Trial.load(str(path)))
            except (OSError, ValueError, KeyError) as e:
                from tuning.trial.config import ConfigError

                raise ConfigError(f"{path}: unreadable ({e}); the oracle "
                                  "cannot be rebuilt without it") from None
        state = self.get_state()  # a fresh oracle's: the defaults
        ids = [t.trial_id for t in trials]
        hashes = {t.trial_id: self._compute_values_hash(
            t.hyperparameters.values) for t in trials}
        ended = [t.trial_id for t in trials if t.status in ENDED]
        state.update(
            ongoing_trials={}, start_order=ids, end_order=ended,
            run_times={i: 1 for i in ids},
            retry_queue=[i for i in ids if i not in ended],
            tried_so_far=sorted(hashes.values()), id_to_hash=hashes,
            seed_state=state["seed_state"] + len(ids))
        return state


ORACLES = {
    name: type(f"Safe{cls.__name__}", (SafeFiles, cls), {})
    for name, cls in (
        ("random", kt.oracles.RandomSearchOracle),
        ("bayesian", kt.oracles.BayesianOptimizationOracle),
        ("hyperband", kt.oracles.HyperbandOracle),
        ("grid", kt.oracles.GridSearchOracle))
}


def make_oracle(spec: StudySpec) -> "kt.Oracle":
    objective = kt.Objective(spec.objective, spec.mode)
    # Keras Tuner takes a falsy seed for "no seed" (a random one from the
    # global `random` state): shifted, every study seed, 0 included,
    # samples the same values on every run.
    common = dict(objective=objective, seed=spec.seed + 1,
                  hyperparameters=hyperparameters(spec.space),
                  allow_new_entries=False, tune_new_entries=False,
                  max_consecutive_failed_trials=spec.max_consecutive_failures)
    if spec.algorithm == "hyperband":
        oracle = ORACLES["hyperband"](
            max_epochs=spec.max_epochs, factor=3,
            hyperband_iterations=spec.max_trials, **common)
        oracle.max_trials = spec.max_trials  # ends at exactly max_trials
        return oracle
    return ORACLES[spec.algorithm](max_trials=spec.max_trials, **common)


class StudyTuner(kt.Tuner):
    """A Keras Tuner whose trials are `train_and_evaluate` runs."""

    def __init__(self, oracle, recorder: TrialRecorder,
                 trainer: TrialTrainer, directory):
        self.recorder = recorder
        self.trainer = trainer
        # Its "Reloading Tuner from ..." line: rnntune says it resumes.
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(oracle=oracle, directory=str(directory),
                             project_name=PROJECT, overwrite=False)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        write_atomic(pathlib.Path(self._get_tuner_fname()),
                     json.dumps(self.get_state()))

    def reload(self):
        path = pathlib.Path(self._get_tuner_fname())
        if not _readable_json(path):  # its state is empty: write it again
            write_atomic(path, json.dumps(self.get_state()))
        super().reload()

    def on_search_begin(self):
        super().on_search_begin()
        # Keras Tuner reloads a project only if this tuner's file exists,
        # which it first writes when a trial ends: written now, a study
        # killed in its first trial resumes that trial instead of starting
        # a different one under the same id.
        self.save()

    def run_trial(self, trial, *args, **kwargs):
        hps = trial.hyperparameters
        values = {k: v for k, v in hps.values.items()
                  if k in HYPERBAND_KEYS or hps.is_active(k)}
        epochs = values.get("tuner/epochs")
        hyperband = "tuner/epochs" in values
        parent = values.get("tuner/trial_id")
        study = self.trainer.study
        if parent:  # a Hyperband round continues its parent's training
            continue_from(study.trial(parent).path,
                          study.trial(trial.trial_id).path)
        try:
            metrics = run_trial(self.recorder, self.trainer, trial.trial_id,
                                values, epochs=epochs, keep_state=hyperband)
        except TrialFailed as e:
            raise kt.errors.FailedTrialError(str(e)) from None
        return {self.trainer.spec.objective: metrics.best_objective}

    def on_trial_end(self, trial):
        try:
            super().on_trial_end(trial)
        except RuntimeError as e:
            if "consecutive failures" in str(e):
                raise StudyFailed(str(e).splitlines()[0]) from None
            raise


def continue_from(parent: pathlib.Path, workdir: pathlib.Path) -> bool:
    """Seeds `workdir` with the training state `parent` kept, so the next
    `train_and_evaluate` there continues from the parent's last epoch (a
    Hyperband round: a longer budget of the same configuration).

    Returns:
        Whether there was a state to continue from.
    """
    mine, theirs = TrainingState(workdir), TrainingState(parent)
    theirs.recover()
    if mine.recover() or not theirs.epoch:
        return False
    mine.seed_from(theirs.path)
    return True


def search(recorder: TrialRecorder, trainer: TrialTrainer) -> None:
    """Runs (or resumes) the study in this process (a chief that trains,
    or a worker) until it has `max_trials` trials."""
    tuner = StudyTuner(make_oracle(trainer.spec), recorder, trainer,
                       trainer.study / "keras_tuner")
    tuner.search(verbose=0)


def run(workdir: pathlib.Path, spec: StudySpec, table: ResultsTable,
        progress: Progress, *, resume: bool, runtime: Runtime,
        address: str | None = None, report=print, status=None,
        verbose: bool = False,
        trial_function: TrialFunction | None = None) -> None:
    """Runs (or resumes) the study with Keras Tuner.

    Trials train in this process, or, with any packing flag
    (`runtime.gpus_per_trial`, `runtime.concurrent_trials`), in worker
    processes beside this one, which serves the oracle (others can join
    it with `rnntune worker`). A project that exists is resumed whatever
    `resume` says: Keras Tuner reloads it.

    Args:
        workdir, spec, table, progress: the study, its results table and
            progress line.
        resume: whether the study is resumed (Keras Tuner needs no word).
        runtime: devices and trial packing.
        address: None (a Ray option: `rnntune tune` refuses it here).
        report: receives progress lines.
        status: receives a live line within each epoch of trials trained
            in this process.
        verbose: keep the libraries' start-up chatter in the workers'.
        trial_function: what trains each trial (None: the real one); only
            in this process.
    """
    from tuning.trial.devices import make_strategy, parse_devices

    if address is not None:
        raise ValueError("the keras-tuner backend joins no Ray cluster")
    study = StudyDir(workdir)
    recorder = TrialRecorder(study, spec, table, on_event=progress,
                             report=report)
    if not (runtime.gpus_per_trial or runtime.concurrent_trials is not None):
        strategy = make_strategy(parse_devices(runtime.devices))
        search(recorder, TrialTrainer(
            study, spec, report=report, strategy=strategy, status=status,
            trial_function=trial_function))
        return
    if trial_function is not None:
        raise ValueError("a trial_function runs in this process; Keras "
                         "Tuner worker processes run the real one")
    import tensorflow as tf

    from tuning.backends import kt_workers

    gpus = len(tf.config.list_physical_devices("GPU"))
    if runtime.gpus_per_trial and not gpus and runtime.concurrent_trials:
        report(f"warning: --gpus-per-trial {runtime.gpus_per_trial:g}, but "
               "this machine shows no GPU: the trials run on CPU workers")
    groups = ([] if runtime.concurrent_trials == 0 else
              kt_workers.worker_groups(
                  gpus=gpus,
                  gpus_per_trial=int(runtime.gpus_per_trial),
                  concurrent_trials=runtime.concurrent_trials))
    # The chief trains nothing: its trainer only names the trials.
    chief = TrialTrainer(study, spec, report=report)
    kt_workers.serve(workdir, lambda: search(recorder, chief),
                     groups=groups, devices=runtime.devices,
                     host=runtime.oracle_host, port=runtime.oracle_port,
                     report=report, verbose=verbose)
