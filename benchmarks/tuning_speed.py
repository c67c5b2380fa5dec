"""Time to a target validation accuracy: rnntune's studies against the
searches its users would otherwise write with Keras Tuner or Ray Tune.

    python benchmarks/tuning_speed.py [--preset seed] [--set KEY=VALUE ...]
        [--targets 0.81 0.82 0.825] [--peers keras-tuner keras-tuner+es
        ray-asha] [--rnntune keras-tuner:hyperband keras-tuner:random
        ray:asha] [--max-epochs 10] [--budget 600] [--repeats 3]
        [--space cells] [--verbose]

Every search covers the same space (`--space`) on the same data (the
preset's, `--set` overrides; e.g. `--preset imdb --set
data.sequence_length=500`, or a large corpus with `--set data.source=csv
--set data.path=big.csv`), on this machine, one after the other in this
process, with the same oracle seed. The peers build each trial's model the
seed notebook's way, vectorizing strings inside the model on every step
(the vectorizer is adapted once, outside every search and its clock):

- `keras-tuner`: `keras_tuner.RandomSearch` with default settings, each
  trial `--max-epochs` epochs;
- `keras-tuner+es`: the same with the one line a Keras Tuner user adds,
  `keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True)`;
- `ray-asha`: Ray Tune's `ASHAScheduler` (grace period 1, the study's
  epochs as `max_t`) over the space as rnntune translates it for Ray,
  each trial reporting with Ray's own Keras callback
  (`TuneReportCheckpointCallback`, a checkpoint per epoch as its
  documentation shows), one CPU per trial;
- rnntune, once per `--rnntune BACKEND:ALGORITHM`: `rnntune tune` with
  in-trial early stopping (patience 1, best weights), the study's data
  cache and length bucketing as the preset sets it. With
  `keras-tuner:random` and the same seed it samples the `keras-tuner`
  peer's configurations in its order, so that difference is rnntune's
  alone.

Each search runs until a trial reaches the highest target at an epoch end,
or `--budget` seconds have passed, whichever comes first. Printed per seed:
the seconds from the start of each search until the first epoch that
reaches each target; a search that has not reached a target within the
budget counts the budget (a lower bound, marked `>`). Then, per target,
the medians over seeds and the ratio of each rnntune search to each peer
(below 1: rnntune is faster). Single runs hinge on which configurations
happen to be sampled first; compare medians, and read the ratio at
several targets.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import tensorflow as tf  # noqa: E402

from data_pipeline.sources import load_splits  # noqa: E402
from data_pipeline.text import adapt_vocabulary, vectorizer_for  # noqa: E402
from launch.presets import get_preset  # noqa: E402
from models.builder import build_model  # noqa: E402
from tuning.trial.config import apply_overrides  # noqa: E402
from tuning.backends.keras_tuner import hyperparameters  # noqa: E402
from tuning.study.space import get_space  # noqa: E402
from tuning.study.spec import StudySpec  # noqa: E402
from tuning.tune import run_study  # noqa: E402

# A trial's epoch line, as rnntune reports it.
EPOCH_LINE = re.compile(r"\] epoch \d+/\d+ .*\bval_accuracy ([0-9.]+|nan)")


class SearchOver(BaseException):
    """Ends a search: the last target reached or the budget spent. A
    BaseException, so neither Keras Tuner nor rnntune records it as a
    failed trial."""


class Clock:
    """Seconds to each target since the search started; ends the search
    once the highest target is reached or the budget is spent."""

    def __init__(self, name: str, targets: list[float], budget: float,
                 verbose: bool):
        self.name, self.targets, self.budget = name, targets, budget
        self.verbose = verbose
        self.started = time.time()
        self.reached: dict[float, float] = {}
        self.best = 0.0
        self.epochs = 0

    def epoch_end(self, val_accuracy: float) -> None:
        elapsed = time.time() - self.started
        self.epochs += 1
        if val_accuracy == val_accuracy:  # not NaN
            self.best = max(self.best, val_accuracy)
        for target in self.targets:
            if (val_accuracy >= target and target not in self.reached
                    and elapsed <= self.budget):  # later is not within it
                self.reached[target] = elapsed
        if self.verbose:
            print(f"  [{self.name}] val_accuracy {val_accuracy:.4f} at "
                  f"{elapsed:.0f}s", flush=True)
        if len(self.reached) == len(self.targets) or elapsed > self.budget:
            raise SearchOver

    def result(self) -> dict:
        return {"seconds_to_target": {
                    str(t): self.reached.get(t) for t in self.targets},
                "seconds": min(time.time() - self.started, self.budget),
                "best_val_accuracy": self.best, "epochs": self.epochs}


# Keras Tuner deep-copies callbacks (and what they hold) for each trial, so
# the clock lives at module level.
CLOCK: dict[str, Clock] = {}


class PeerEpochs(keras.callbacks.Callback):
    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def on_epoch_end(self, epoch, logs=None):
        CLOCK[self.name].epoch_end(float(logs["val_accuracy"]))


def peer_model(base, space, vectorizer, values: dict) -> keras.Model:
    """A peer's trial: the sampled configuration's model on raw strings,
    vectorized inside the model."""
    config = space.configure(base, values)
    inner = build_model(config.model, vocab_size=base.data.max_tokens,
                        num_classes=2)
    model = keras.Sequential([keras.Input(shape=(), dtype="string"),
                              vectorizer, inner])
    model.compile(optimizer=keras.optimizers.Adam(
        config.train.learning_rate), loss="binary_crossentropy",
        metrics=["accuracy"])
    return model


def string_batches(split, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(
        (split.texts, split.labels)).shuffle(len(split), seed=0).batch(
            batch_size)


def keras_tuner_peer(name, base, space, splits, vocabulary, args, directory,
                     seed) -> dict:
    """`keras_tuner.RandomSearch` as its users write it, with
    `EarlyStopping` when `name` says `+es`."""
    vectorizer = vectorizer_for(vocabulary, max_tokens=base.data.max_tokens,
                                sequence_length=base.data.sequence_length)

    def build(hp):
        return peer_model(base, space, vectorizer, {
            k: v for k, v in hp.values.items() if hp.is_active(k)})

    tuner = kt.RandomSearch(build, objective="val_accuracy",
                            max_trials=args.max_trials,
                            seed=seed + 1,  # as rnntune seeds its oracles
                            hyperparameters=hyperparameters(space),
                            directory=str(directory), project_name="peer")
    callbacks = [PeerEpochs(name)]
    if name.endswith("+es"):
        callbacks.append(keras.callbacks.EarlyStopping(
            patience=1, restore_best_weights=True))
    clock = CLOCK[name] = Clock(name, args.targets, args.budget,
                                args.verbose)
    batch = base.train.batch_size
    try:
        tuner.search(string_batches(splits.train, batch),
                     validation_data=string_batches(splits.validation,
                                                    batch),
                     epochs=args.max_epochs, verbose=0, callbacks=callbacks)
    except SearchOver:
        pass
    return clock.result()


def _ray_peer_trial(values, *, base, space, vocabulary, train, validation,
                    epochs):
    """One trial of the Ray Tune peer, as a Ray user writes it."""
    from ray.tune.integration.keras import TuneReportCheckpointCallback

    vectorizer = vectorizer_for(vocabulary, max_tokens=base.data.max_tokens,
                                sequence_length=base.data.sequence_length)
    model = peer_model(base, space, vectorizer, space.active(values))
    batch = base.train.batch_size
    model.fit(string_batches(train, batch),
              validation_data=string_batches(validation, batch),
              epochs=epochs, verbose=0,
              callbacks=[TuneReportCheckpointCallback(
                  metrics=["val_accuracy"])])


def ray_peer(name, base, space, splits, vocabulary, args, directory,
             seed) -> dict:
    """Ray Tune's ASHA over the space, each trial reporting with Ray's own
    Keras callback."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from tuning.backends import ray_tune
    from tuning.backends.ray_space import param_space

    clock = Clock(name, args.targets, args.budget, args.verbose)

    class Timed(tune.Stopper):
        def __call__(self, trial_id, result):
            try:
                clock.epoch_end(float(result["val_accuracy"]))
            except SearchOver:
                pass
            return False

        def stop_all(self):
            return (len(clock.reached) == len(clock.targets)
                    or time.time() - clock.started > clock.budget)

    ray_tune._connect(None)
    spec = StudySpec(base=base, space=space, backend="ray",
                     algorithm="asha", max_trials=args.max_trials,
                     max_epochs=args.max_epochs, seed=seed)
    trainable = tune.with_resources(tune.with_parameters(
        _ray_peer_trial, base=base, space=space, vocabulary=vocabulary,
        train=splits.train, validation=splits.validation,
        epochs=args.max_epochs), {"cpu": 1})
    clock.started = time.time()
    tune.Tuner(
        trainable, param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric="val_accuracy", mode="max", num_samples=args.max_trials,
            scheduler=ASHAScheduler(max_t=args.max_epochs, grace_period=1),
            search_alg=tune.search.BasicVariantGenerator(
                random_state=seed)),
        run_config=tune.RunConfig(storage_path=str(directory), stop=Timed(),
                                  verbose=0)).fit()
    ray.shutdown()
    return clock.result()


PEERS = {"keras-tuner": keras_tuner_peer, "keras-tuner+es": keras_tuner_peer,
         "ray-asha": ray_peer}


def rnntune(name, base, space, args, workdir, seed) -> dict:
    backend, algorithm = name.split(":")
    spec = StudySpec(base=apply_overrides(base, {
        "train.early_stopping_patience": 1}), space=space,
        backend=backend, algorithm=algorithm,
        max_trials=args.max_trials, max_epochs=args.max_epochs, seed=seed)
    clock = Clock(f"rnntune {name}", args.targets, args.budget,
                  args.verbose)

    def report(line):
        match = EPOCH_LINE.search(line)
        if match:
            clock.epoch_end(float(match.group(1)))
        elif (backend == "ray" and time.time() - clock.started
              > clock.budget):
            raise SearchOver  # no epoch has ended for a while

    try:
        run_study(workdir, spec, report=report)
    except SearchOver:
        pass
    if backend == "ray":
        import ray

        ray.shutdown()  # its trials stop with it
    return clock.result()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--set", dest="overrides", action="append",
                        default=[], metavar="KEY=VALUE",
                        help="override a preset key (repeatable)")
    parser.add_argument("--targets", type=float, nargs="+",
                        default=[0.81, 0.82, 0.825])
    parser.add_argument("--max-trials", type=int, default=100,
                        help="trials at most (the budget usually ends a "
                        "search first)")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--budget", type=float, default=600,
                        help="seconds each search may run")
    parser.add_argument("--space", default="cells")
    parser.add_argument("--peers", nargs="+", choices=list(PEERS),
                        default=list(PEERS))
    parser.add_argument("--rnntune", nargs="+", metavar="BACKEND:ALGORITHM",
                        default=["keras-tuner:hyperband",
                                 "keras-tuner:random", "ray:asha"],
                        help="rnntune's studies to time")
    parser.add_argument("--repeats", type=int, default=3,
                        help="oracle seeds; medians are reported")
    parser.add_argument("--verbose", action="store_true",
                        help="print every epoch of every search")
    args = parser.parse_args(argv)
    args.targets = sorted(args.targets)
    base = apply_overrides(get_preset(args.preset), args.overrides)
    space = get_space(args.space)
    for name in args.rnntune:  # a typo fails now, not after an hour
        backend, _, algorithm = name.partition(":")
        StudySpec(base=base, space=space, backend=backend,
                  algorithm=algorithm, max_trials=1)
    splits = load_splits(base.data)
    vocabulary = adapt_vocabulary(splits.train.texts,
                                  max_tokens=base.data.max_tokens)
    runs = []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            run = {"seed": seed}
            for name in args.rnntune:
                run[f"rnntune {name}"] = rnntune(
                    name, base, space, args, tmp / name.replace(":", "-"),
                    seed)
                keras.backend.clear_session()
            for name in args.peers:
                run[name] = PEERS[name](name, base, space, splits,
                                        vocabulary, args, tmp / name, seed)
                keras.backend.clear_session()
        runs.append(run)

        def shown(result):
            return ", ".join(
                f"{t}: {'>%.0f' % args.budget if s is None else '%.0f' % s}"
                for t, s in result["seconds_to_target"].items())

        for name, result in run.items():
            if name != "seed":
                print(f"seed {seed}: {name}: seconds to target "
                      f"{shown(result)} (best "
                      f"{result['best_val_accuracy']:.4f}, "
                      f"{result['epochs']} epochs)", flush=True)

    def median(name, target):
        # Not reached within the budget: the budget, a lower bound.
        return statistics.median(
            r[name]["seconds_to_target"][str(target)] or args.budget
            for r in runs)

    summary = {}
    for target in args.targets:
        peers = {name: median(name, target) for name in args.peers}
        summary[str(target)] = {"peers_median_seconds": peers}
        print(f"val_accuracy >= {target}: median seconds over "
              f"{args.repeats} seeds: " + ", ".join(
                  f"{name} {s:.0f}" for name, s in peers.items()))
        for name in args.rnntune:
            ours = median(f"rnntune {name}", target)
            ratios = {peer: ours / s for peer, s in peers.items()}
            summary[str(target)][name] = {"median_seconds": ours,
                                          "ratios": ratios}
            print(f"  rnntune {name} {ours:.0f}: ratio to " + ", ".join(
                f"{peer} {r:.2f}" for peer, r in ratios.items()))
    print(json.dumps({"args": vars(args), "runs": runs,
                      "summary": summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
