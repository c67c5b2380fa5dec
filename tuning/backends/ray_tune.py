"""Ray Tune backend: searchers and schedulers pick and stop trials; each
trial is the one trial function in a Ray worker, reporting every epoch.

Trials report each epoch (so ASHA, HyperBand and PBT can stop or exploit
them) with a checkpoint of the trial's `BackupAndRestore` state, so a
paused, preempted or exploited trial continues from its last finished
epoch. The experiment directory, `WORKDIR/ray/study`, reopens with Ray's
own `tune.Tuner.restore` and `ResultGrid`.
"""

import json
import logging
import os
import pathlib
import shutil
import sys
import warnings

for _name, _value in (("RAY_USAGE_STATS_ENABLED", "0"),
                      ("RAY_AUTH_MODE", "disabled"),
                      ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")):
    os.environ.setdefault(_name, _value)

try:
    import ray
    from ray import tune
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("the ray backend needs Ray Tune: pip install "
                      "'rnntune[ray]'") from e

from tuning.study.progress import Progress  # noqa: E402
from tuning.study.results import (  # noqa: E402
    COMPLETED, FAILED, STOPPED_EARLY, ResultsTable)
from tuning.study.runner import (  # noqa: E402
    TrialFailed, TrialFunction, TrialRunner)
from tuning.study.spec import Runtime, StudyFailed, StudySpec  # noqa: E402
from tuning.trial.history import format_epoch  # noqa: E402
from tuning.trial.state import TrainingState  # noqa: E402

EXPERIMENT = "study"
ORIGIN = "origin.json"
EPOCH_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy",
              "accuracy_gap", "loss_gap", "seconds")


def _domain(d):
    if d.kind == "choice":
        return tune.choice(list(d.values))
    if d.kind == "int":
        if d.log:
            return tune.lograndint(int(d.low), int(d.high) + 1)
        return tune.qrandint(int(d.low), int(d.high), int(d.step or 1))
    if d.log:
        return tune.loguniform(d.low, d.high)
    if d.step:
        return tune.quniform(d.low, d.high, d.step)
    return tune.uniform(d.low, d.high)


def param_space(spec: StudySpec) -> dict:
    """Every dimension as a Ray Tune domain (conditions apply in the
    trial: inactive keys are dropped before the config is built)."""
    return {d.key: _domain(d) for d in spec.space.dimensions}


def grid_points(spec: StudySpec) -> list[dict]:
    """Every combination of the grid, respecting conditions."""
    points = [{}]
    for d in spec.space.dimensions:
        grown = []
        for point in points:
            if d.when and point.get(d.when[0]) not in d.when[1]:
                grown.append(point)
                continue
            grown.extend({**point, d.key: v} for v in d.grid())
        points = grown
    return points


class OptunaSpace:
    """The space define-by-run for Optuna, so conditions hold (a class,
    not a closure: Ray pickles the searcher with its experiment state)."""

    def __init__(self, spec: StudySpec):
        self.dimensions = spec.space.dimensions

    def __call__(self, trial):
        values = {}
        for d in self.dimensions:
            if d.when and values.get(d.when[0]) not in d.when[1]:
                continue
            if d.kind == "choice":
                values[d.key] = trial.suggest_categorical(d.key,
                                                          list(d.values))
            elif d.kind == "int":
                values[d.key] = trial.suggest_int(
                    d.key, int(d.low), int(d.high),
                    step=1 if d.log else int(d.step or 1), log=d.log)
            else:
                values[d.key] = trial.suggest_float(
                    d.key, d.low, d.high, step=d.step, log=d.log)


def _search(spec: StudySpec):
    """(search_alg, scheduler, param_space, num_samples) for the spec."""
    from ray.tune.schedulers import (ASHAScheduler, HyperBandScheduler,
                                     PopulationBasedTraining)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    space = param_space(spec)
    random = BasicVariantGenerator(random_state=spec.seed)
    if spec.algorithm == "grid":
        points = grid_points(spec)[:spec.max_trials]
        return (BasicVariantGenerator(points_to_evaluate=points,
                                      random_state=spec.seed),
                None, space, len(points))
    if spec.algorithm == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(
            space=OptunaSpace(spec), metric=spec.objective, mode=spec.mode,
            sampler=optuna.samplers.TPESampler(seed=spec.seed))
        return searcher, None, {}, spec.max_trials
    if spec.algorithm == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", max_t=spec.max_epochs,
                                  grace_period=1, reduction_factor=3)
    elif spec.algorithm == "hyperband":
        scheduler = HyperBandScheduler(time_attr="epoch",
                                       max_t=spec.max_epochs)
    elif spec.algorithm == "pbt":
        mutations = {d.key: _domain(d) for d in spec.space.dimensions
                     if d.key.startswith("train.") and not d.when}
        if not mutations:
            from tuning.trial.config import ConfigError

            raise ConfigError(
                "pbt mutates training keys only (weights carry over "
                "between trials): the space needs a train.* dimension, "
                "e.g. train.learning_rate")
        scheduler = PopulationBasedTraining(
            time_attr="epoch", perturbation_interval=1,
            hyperparam_mutations=mutations)
    else:
        scheduler = None
    return random, scheduler, space, spec.max_trials


def epoch_result(trial_dir: pathlib.Path, spec: StudySpec) -> dict:
    """The last finished epoch's metrics and the best so far."""
    from tuning.trial.history import read_history
    from tuning.trial.verdict import best_row

    rows = read_history(trial_dir / "history.csv")
    last = rows[-1]
    best = best_row(rows, spec.objective)
    return {"epoch": last["epoch"], **{k: last[k] for k in EPOCH_KEYS},
            "best_objective": best[spec.objective],
            "best_epoch": best["epoch"], "node": node()}


class Messages:
    """The trial function's lines (such as "resuming at epoch 4/12"): kept
    in Ray's logs and carried to the driver with the next result, since a
    trial's own output does not reach it."""

    def __init__(self):
        self._lines: list[str] = []

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self._lines.append(line)

    def take(self) -> list[str]:
        lines, self._lines = self._lines, []
        return lines


class EpochReporter:
    """Reports each epoch to Ray with a checkpoint of the trial's state
    (an epoch hook of the trial function).

    Runs after the trial's history row and backup are written. The trial's
    last epoch is not reported here: it goes out with the final metrics
    once the model is exported, so a scheduler that stops a trial at its
    epoch budget never cuts the export short.
    """

    def __init__(self, trial_dir: pathlib.Path, trial_id: str,
                 spec: StudySpec, messages: Messages):
        self.trial_dir = trial_dir
        self.trial_id = trial_id
        self.spec = spec
        self.messages = messages

    def __call__(self, epoch: int, last: bool) -> None:
        if last:
            return
        staging = self.trial_dir / "ray_checkpoint"
        shutil.rmtree(staging, ignore_errors=True)
        TrainingState(self.trial_dir).copy_to(staging)
        (staging / ORIGIN).write_text(json.dumps({"trial": self.trial_id}))
        tune.report({**epoch_result(self.trial_dir, self.spec),
                     "messages": self.messages.take()},
                    checkpoint=tune.Checkpoint.from_directory(str(staging)))


def _restore(trial_dir: pathlib.Path, trial_id: str) -> None:
    """Puts Ray's checkpoint where the trial function resumes from.

    A checkpoint from this very trial is already there (its backup may even
    be newer); one from another trial (a PBT exploit) replaces the state,
    and the workdir's config check is reset since the config was mutated.
    """
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return
    state = TrainingState(trial_dir)
    with checkpoint.as_directory() as path:
        path = pathlib.Path(path)
        origin = json.loads((path / ORIGIN).read_text())["trial"]
        if origin == trial_id and state.recover():
            return
        state.discard()
        state.seed_from(path)
    for name in ("config.json", "metrics.json"):
        (trial_dir / name).unlink(missing_ok=True)


def trainable(values: dict, *, workdir: str, spec: dict, devices: str,
              trial_function: TrialFunction | None = None) -> None:
    """One Ray trial: the one trial function, every epoch reported.

    It mirrors across the devices Ray gave it (the GPUs in its
    `CUDA_VISIBLE_DEVICES`, with `devices="auto"`).
    """
    from tuning.trial.devices import make_strategy, parse_devices

    # Before any TensorFlow op; only the real trial function uses it.
    strategy = (make_strategy(parse_devices(devices))
                if trial_function is None else None)
    spec = StudySpec.from_dict(spec)
    trial_id = tune.get_context().get_trial_id()
    messages = Messages()
    runner = TrialRunner(pathlib.Path(workdir), spec, None, record=False,
                         strategy=strategy, trial_function=trial_function,
                         report=messages)
    trial_dir = runner.trial_dir(trial_id)
    _restore(trial_dir, trial_id)
    try:
        metrics = runner.train(
            trial_id, values,
            epoch_hooks=[EpochReporter(trial_dir, trial_id, spec, messages)])
    except TrialFailed as e:
        raise RuntimeError(str(e)) from None
    tune.report({**epoch_result(trial_dir, spec), "final": True,
                 "stopped_early": metrics["stopped_early"],
                 "messages": messages.take()})


def node() -> str:
    """The Ray node this process runs on (its id's first 12 digits)."""
    return ray.get_runtime_context().get_node_id()[:12]


class StudyCallback(tune.Callback):
    """Keeps the results table and HParams sessions from the driver, and
    counts consecutive failures for `FailureStopper`."""

    def __init__(self, workdir: str, spec: dict):
        self.workdir = workdir
        self.spec = spec
        self.consecutive_failures = 0
        self._runner = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_runner"}

    def __setstate__(self, state):
        self.__dict__.update(state, _runner=None)

    @property
    def runner(self) -> TrialRunner:
        if self._runner is None:  # restored from Ray's experiment state
            spec = StudySpec.from_dict(self.spec)
            workdir = pathlib.Path(self.workdir)
            table = ResultsTable(workdir, spec.space)
            self._runner = TrialRunner(
                workdir, spec, table,
                on_event=Progress(spec, table, print))
        return self._runner

    def _values(self, trial) -> dict:
        return {k: trial.config[k] for k in self.runner.spec.space.keys
                if k in trial.config}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.runner.start(trial.trial_id, self._values(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        # The trials' own output stays in Ray's logs: their messages and
        # epochs are reported from here, in the order Ray receives them.
        for line in result.get("messages") or ():
            self.runner.report(f"  [trial {trial.trial_id}] {line}")
        self.runner.report(f"  [trial {trial.trial_id}] " + format_epoch(
            result, self.runner.spec.max_epochs))
        # A PBT exploit gives the trial another trial's whole config (and
        # weights): the row shows what the trial now trains.
        active = self.runner.spec.space.active(self._values(trial))
        self.runner.table.update(
            trial.trial_id, node=result["node"], epochs_run=result["epoch"],
            stopped_epoch=result["epoch"],
            best_objective=result["best_objective"],
            best_epoch=result["best_epoch"],
            final_accuracy_gap=result["accuracy_gap"],
            **{k: active.get(k) for k in self.runner.spec.space.keys})

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.consecutive_failures = 0
        last = trial.last_result or {}
        metrics_path = (self.runner.trial_dir(trial.trial_id)
                        / "metrics.json")
        if last.get("final") and metrics_path.exists():
            metrics = json.loads(metrics_path.read_text())
            early = metrics["stopped_early"]
            self.runner.finish(
                trial.trial_id, STOPPED_EARLY if early else COMPLETED,
                "early stopping" if early else "", metrics)
            return
        # Stopped by the scheduler: on_trial_result already recorded its
        # last epoch's figures.
        reason = (f"stopped by the {self.runner.spec.algorithm} scheduler "
                  f"after epoch {last.get('epoch', 0)}")
        self.runner.finish(trial.trial_id, STOPPED_EARLY, reason)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.consecutive_failures += 1
        self.runner.finish(trial.trial_id, FAILED, _error_reason(trial))


def _error_reason(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    text = ""
    try:
        text = pathlib.Path(path).read_text() if path else ""
    except OSError:
        pass
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("RuntimeError: ", "ray.exceptions")):
            return line.split(": ", 1)[-1][:300]
    return (lines[-1] if lines else "trial raised")[:300]


class FailureStopper(tune.Stopper):
    """Stops the whole study after too many consecutive failed trials."""

    def __init__(self, callback: StudyCallback, limit: int):
        self.callback = callback
        self.limit = limit

    def __call__(self, trial_id, result):
        return False

    def stop_all(self):
        return self.callback.consecutive_failures >= self.limit


def make_trainable(workdir: pathlib.Path, spec: StudySpec,
                   runtime: Runtime, *,
                   trial_function: TrialFunction | None = None):
    """The study's trainable with its resources, as `tune.Tuner.restore`
    needs it back:

        tune.Tuner.restore(str(workdir / "ray" / "study"), trainable=
                           make_trainable(workdir, spec, runtime))
    """
    fn = tune.with_parameters(trainable, workdir=str(workdir),
                              spec=spec.to_dict(), devices=runtime.devices,
                              trial_function=trial_function)
    return tune.with_resources(fn, {"cpu": runtime.cpus_per_trial,
                                    "gpu": runtime.gpus_per_trial})


def _connect(address: str | None, num_cpus: int | None = None, *,
             verbose: bool = False) -> None:
    """Starts a local Ray (loopback only) or joins `address`.

    Unless `verbose`, Ray's own lines (its banner, the workers' output,
    checkpoint notices) stay in its session logs and Tune prints nothing;
    the study reports trials and epochs itself.
    """
    if ray.is_initialized():
        return
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # no escape codes
    if not verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's silent one
        warnings.filterwarnings("ignore", message="Consider boosting PBT")
    logs = dict(log_to_driver=verbose,
                logging_level=logging.INFO if verbose else logging.WARNING)
    if address:
        ray.init(address=address, **logs)
    else:
        ray.init(address="local", num_cpus=num_cpus,
                 include_dashboard=False,
                 object_store_memory=200_000_000,
                 _node_ip_address="127.0.0.1", **logs)


def run(workdir: pathlib.Path, spec: StudySpec, table: ResultsTable,
        progress: Progress, *, resume: bool, address: str | None,
        runtime: Runtime, report=print, verbose: bool = False,
        trial_function: TrialFunction | None = None) -> None:
    """Runs (or resumes) the Ray Tune experiment of the study."""
    _connect(address, verbose=verbose)
    if address:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        report(f"joined the Ray cluster at {address} ({len(nodes)} "
               f"node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs)")
    callback = StudyCallback(str(workdir), spec.to_dict())
    callback._runner = TrialRunner(workdir, spec, table, on_event=progress,
                                   report=report)
    experiment = workdir / "ray" / EXPERIMENT
    fn = make_trainable(workdir, spec, runtime,
                        trial_function=trial_function)
    if resume and tune.Tuner.can_restore(str(experiment)):
        # The callbacks come back from Ray's experiment state.
        tuner = tune.Tuner.restore(str(experiment), trainable=fn,
                                   resume_unfinished=True,
                                   resume_errored=False)
    else:
        searcher, scheduler, space, samples = _search(spec)
        tuner = tune.Tuner(
            fn, param_space=space,
            tune_config=tune.TuneConfig(
                metric=spec.objective, mode=spec.mode, num_samples=samples,
                search_alg=searcher, scheduler=scheduler,
                max_concurrent_trials=runtime.concurrent_trials or None),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=str(workdir / "ray"),
                callbacks=[callback],
                stop=FailureStopper(callback, spec.max_consecutive_failures),
                failure_config=tune.FailureConfig(max_failures=0),
                # PBT exploits other trials' recent checkpoints.
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=4 if spec.algorithm == "pbt" else 2),
                verbose=1 if verbose else 0))
    tuner.fit()
    failures = ResultsTable(workdir, spec.space).consecutive_failures()
    if failures >= spec.max_consecutive_failures:
        raise StudyFailed(f"{failures} consecutive trials failed (see the "
                          "reason column of trials.csv)")
