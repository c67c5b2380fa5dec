"""The one training path: `train_and_evaluate(config, workdir)`.

`rnntune train`, `rnntune compare` and the tuners all call it:

    metrics = train_and_evaluate(config, "runs/lstm")

It writes into `workdir`:

    config.json      resolved config, plus the runtime (replicas, batches)
    vocabulary.txt   the vectorizer's tokens, index order
    labels.txt       class names, label index order
    history.csv      one row per finished epoch
    metrics.json     final metrics; written last, so it marks a finished run
    model.keras      end-to-end model: raw strings in, probabilities out
    logs/train, logs/validation, logs/gap   TensorBoard event files
    backup/          the training state while training runs
                     (`tuning.trial.state`)

A run killed at any moment continues from its last finished epoch when
called again on the same workdir and config.
"""

import dataclasses
import math
import os
import pathlib
import shutil
import statistics
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from data_pipeline.pipeline import VectorizedSplits, padded_share
from data_pipeline.sources import Split, TextSplits, load_splits
from data_pipeline.text import save_vocabulary
from models.builder import build_model
from models.config import cudnn_layers
from tuning.trial import verdict
from tuning.trial.callbacks import (BestEpoch, CommitEachEpoch,
                                    EpochHook, EpochHooks, EpochRecorder,
                                    LiveProgress, PlateauSchedule, Report)
from tuning.trial.config import Config, TrainConfig
from tuning.trial.devices import describe as describe_devices
from tuning.trial.files import write_atomic, write_json
from tuning.trial.provenance import provenance
from tuning.trial.state import BEST_WEIGHTS, TrainingState
from tuning.trial.tb_layout import write_layout
from tuning.trial.verdict import best_row
from tuning.trial.workdir import check_workdir

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}
LOG_RUNS = ("train", "validation", "gap")  # the TensorBoard runs it writes


def train_and_evaluate(
    config: Config,
    workdir: str | os.PathLike,
    *,
    strategy: tf.distribute.Strategy | None = None,
    splits: TextSplits | None = None,
    vectorized: VectorizedSplits | None = None,
    report: Report = print,
    status: Report | None = None,
    epoch_hooks: Sequence[EpochHook] = (),
    keep_state: bool = False,
    evaluate_test: bool = True,
) -> dict:
    """Trains one model, evaluates it and writes the run into `workdir`.

    Args:
        config: the resolved configuration.
        workdir: the run's directory; created if missing. A finished run
            there with the same config is returned as is; an unfinished one
            resumes from its last finished epoch.
        strategy: distribution strategy (default: the current one).
        splits: already loaded data (`load_splits(config.data)` if None).
        vectorized: `splits` already vectorized with `config.data`'s
            vocabulary size and length (shared by a study's trials); built
            here if None.
        report: receives one line per event (epoch finished, resume).
        status: receives a live line within each epoch (step, rate, time
            left), for a terminal; None for none.
        epoch_hooks: called as `hook(epoch, last)` after each epoch's
            history row and training state are committed (`last`: training
            ends with this epoch); the tuners report epochs through them.
        keep_state: keep the training state (`backup/`, best weights) after
            the run, so another run can continue from it (`continue_from`).
        evaluate_test: evaluate the test split at the end (on a finished
            run without test metrics, evaluate its exported model now). A
            study's trials and a comparison's cells train without: only
            the model they choose is evaluated, so the test split never
            takes part in a choice.

    Returns:
        The metrics also written to `metrics.json`.

    Raises:
        DataError: the data source cannot be read.
        WorkdirError: `workdir` holds a run with another config.
    """
    workdir = pathlib.Path(workdir)
    finished = check_workdir(workdir, config)
    if finished is not None:
        if evaluate_test and _untested(finished):
            finished = add_test_metrics(workdir, finished, splits or
                                        load_splits(config.data))
        return reuse_finished(workdir, finished, keep_state=keep_state,
                              report=report)
    started = time.perf_counter()
    data = prepare_data(config, strategy or tf.distribute.get_strategy(),
                        splits=splits, vectorized=vectorized, report=report)
    warn_of_slow_kernels(config, report=report)
    warn_of_padded_final_steps(config, data.vectorized, report=report)
    state = TrainingState(workdir)
    done = open_workdir(workdir, state)
    write_run_files(workdir, config, data)
    # From here on the epochs are those of this corpus (config.json keeps
    # the config as given, which a resume compares).
    config = sized_to_corpus(config, len(data.splits.train), report=report)
    model = create_model(config, data, state if done else None)
    recorder, best, epochs = plan_epochs(config, workdir, done,
                                         report=report)
    live = [LiveProgress(status, epochs=config.train.epochs)] if status else []
    plateau = [PlateauSchedule(recorder, base=data.learning_rate,
                               objective=config.train.objective,
                               report=report)
               ] if config.train.lr_schedule == "plateau" else []
    train_model(model, data, initial_epoch=done, epochs=epochs,
                callbacks=[keras.callbacks.TerminateOnNaN(), *live,
                           *plateau, recorder,
                           best, keras.callbacks.TensorBoard(
                               workdir / "logs", write_graph=False),
                           # After those: an epoch is only marked done once
                           # its history row and best weights are written.
                           CommitEachEpoch(state), EpochHooks(epoch_hooks)])
    metrics = evaluate_model(model, data, config, recorder.rows,
                             stopped_early=best.stopped_early,
                             evaluate_test=evaluate_test)
    if metrics["status"] != "diverged":
        export(workdir, data.vectorized.vectorizer, model)
    metrics["wall_seconds"] = time.perf_counter() - started
    write_json(workdir / "metrics.json", metrics)
    # Only now that the run is recorded finished: killed before this, it
    # resumes from the state instead of training again.
    if not keep_state:
        state.discard()
    return metrics


def reuse_finished(workdir: pathlib.Path, metrics: dict, *,
                   keep_state: bool, report: Report) -> dict:
    """A finished run's metrics, as they were recorded."""
    if not keep_state:  # killed between metrics.json and the cleanup
        TrainingState(workdir).discard()
    report(f"{workdir}: already finished, reusing its metrics")
    return metrics


def _untested(metrics: dict) -> bool:
    return (metrics["status"] != "diverged"
            and not math.isfinite(metrics.get("test_accuracy") or math.nan))


def add_test_metrics(workdir: pathlib.Path, metrics: dict,
                     splits: TextSplits) -> dict:
    """A finished run's metrics with its exported model's test figures,
    recorded in `metrics.json`."""
    metrics = {**metrics, **evaluate_on_test(workdir / "model.keras", splits)}
    write_json(workdir / "metrics.json", metrics)
    return metrics


@dataclasses.dataclass(frozen=True)
class RunData:
    """The data of one run, batched for its strategy."""

    splits: TextSplits
    vectorized: VectorizedSplits
    datasets: dict[str, tf.data.Dataset]  # split name -> batches
    strategy: tf.distribute.Strategy
    per_replica_batch_size: int
    global_batch_size: int
    learning_rate: float  # scaled with the replicas if the config says so

    @property
    def num_classes(self) -> int:
        return len(self.splits.class_names)

    @property
    def steps_per_epoch(self) -> int:
        """Training batches per epoch (each a step of all replicas)."""
        return int(self.datasets["train"].cardinality())


def prepare_data(config: Config, strategy: tf.distribute.Strategy, *,
                 splits: TextSplits | None,
                 vectorized: VectorizedSplits | None,
                 report: Report) -> RunData:
    """Reads and checks the data (before anything is written), vectorizes
    it unless given, and batches every split for the strategy."""
    if splits is None:
        splits = load_splits(config.data)
    replicas = strategy.num_replicas_in_sync
    global_batch_size = config.train.batch_size * replicas
    # Seeded before the vectorizer and model draw anything.
    keras.utils.set_random_seed(config.train.seed)
    if vectorized is None:
        vectorized = VectorizedSplits.build(
            splits, max_tokens=config.data.max_tokens,
            sequence_length=config.data.sequence_length)
    for note in splits.notes:
        report(f"data: {note}")
    return RunData(
        splits=splits, vectorized=vectorized,
        datasets={name: vectorized.dataset(
            name, global_batch_size=global_batch_size,
            shuffle=name == "train", seed=config.data.seed,
            bucket=config.data.bucket_by_length)
            for name in vectorized.ids},
        strategy=strategy,
        per_replica_batch_size=config.train.batch_size,
        global_batch_size=global_batch_size,
        learning_rate=config.train.learning_rate * (
            replicas if config.train.scale_learning_rate else 1))


def sized_to_corpus(config: Config, train_examples: int, *,
                    report: Report) -> Config:
    """`config` training the epochs `train.min_examples_seen` asks of
    `train_examples` texts (said when they are more than `train.epochs`)."""
    epochs = config.train.epochs_for(train_examples)
    if epochs == config.train.epochs:
        return config
    report(f"train.min_examples_seen={config.train.min_examples_seen}: "
           f"{train_examples} training texts, so up to {epochs} epochs "
           f"rather than {config.train.epochs}")
    return dataclasses.replace(config, train=dataclasses.replace(
        config.train, epochs=epochs, min_examples_seen=0))


def warn_of_slow_kernels(config: Config, *, report: Report) -> None:
    """Says once, on a GPU machine, which recurrent layers will not run
    the cuDNN kernel and why (they run several times slower); without a
    GPU, that float16 is emulated (tens of times slower)."""
    if not tf.config.list_logical_devices("GPU"):
        if config.train.precision == "mixed_float16":
            report("warning: train.precision=mixed_float16 without a GPU: "
                   "the CPU emulates float16, tens of times slower than "
                   "float32")
        return
    slow = [layer for layer in cudnn_layers(config.model)
            if not layer["cudnn"]]
    if slow:
        report(f"warning: {', '.join(layer['layer'] for layer in slow)} "
               f"will not use cuDNN on the GPU: {slow[0]['why']}")


# From this share of padded texts on, a final state read after the padding
# costs accuracy (the seed's LSTM at 500 tokens stays near chance).
PADDED_WARNING_SHARE = 0.1


def warn_of_padded_final_steps(config: Config, vectorized: VectorizedSplits,
                               *, report: Report) -> None:
    """Says once when the head reads an unmasked final state and many
    texts end in padding: the state has then read the padding last."""
    if config.model.mask_zero or config.model.pooling != "last":
        return
    share = padded_share(vectorized.ids["train"],
                         vectorized.bucket_bounds
                         if config.data.bucket_by_length else None)
    if share >= PADDED_WARNING_SHARE:
        report(f"warning: {share:.0%} of the training texts end in padding, "
               "and the final state (model.pooling=last, "
               "model.mask_zero=false) reads it after the text; "
               "model.mask_zero=true or model.pooling=mean|max|attention "
               "avoids that")


def open_workdir(workdir: pathlib.Path, state: TrainingState) -> int:
    """Creates `workdir` and recovers its training state.

    Returns:
        The last finished epoch to resume after (0: a fresh start, the
        previous attempt's files dropped).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    done = state.recover()
    if not done:
        state.start_fresh()
        # Only the runs this function writes: logs/ itself may hold a
        # tuner's HParams session for this trial.
        for run in LOG_RUNS:
            shutil.rmtree(workdir / "logs" / run, ignore_errors=True)
    return done


def write_run_files(workdir: pathlib.Path, config: Config,
                    data: RunData) -> None:
    """config.json (with the runtime), vocabulary.txt, labels.txt and the
    TensorBoard layout."""
    splits, vectorizer = data.splits, data.vectorized.vectorizer
    runtime = {
        "replicas": data.strategy.num_replicas_in_sync,
        "per_replica_batch_size": data.per_replica_batch_size,
        "global_batch_size": data.global_batch_size,
        "strategy": type(data.strategy).__name__,
        "devices": describe_devices(data.strategy),
        "learning_rate": data.learning_rate,
        "data": splits.description,
        "examples": {name: len(split) for name, split in (
            ("train", splits.train), ("validation", splits.validation),
            ("test", splits.test)) if split is not None},
        "class_names": list(splits.class_names),
        "data_reading": splits.stats,
        "vocabulary_size": vectorizer.vocabulary_size(),
        "bucket_bounds": (list(data.vectorized.bucket_bounds)
                          if config.data.bucket_by_length else None),
        "precision": config.train.precision,
        # Whether each recurrent layer takes cuDNN on a GPU, and why not.
        "cudnn": cudnn_layers(config.model),
        # What the numbers were made with: versions, and a hash of each
        # split's texts and labels.
        **provenance(splits),
    }
    write_json(workdir / "config.json",
               {"config": config.to_dict(), "runtime": runtime})
    save_vocabulary(vectorizer, workdir / "vocabulary.txt")
    write_layout(workdir)
    write_atomic(workdir / "labels.txt",
                 "".join(f"{name}\n" for name in splits.class_names))


def create_model(config: Config, data: RunData,
                 state: TrainingState | None) -> keras.Model:
    """The compiled model under the run's strategy and precision, with the
    committed weights of `state` when it resumes."""
    # The policy applies to the layers built under it (the process-wide
    # default goes back at once: the next run may want another).
    keras.mixed_precision.set_global_policy(config.train.precision)
    try:
        with data.strategy.scope():
            model = build_model(config.model, vocab_size=data.vectorized
                                .vectorizer.vocabulary_size(),
                                num_classes=data.num_classes)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with data.strategy.scope():
        # Under mixed_float16 Keras wraps the optimizer in a
        # LossScaleOptimizer (dynamic loss scaling) by itself.
        model.compile(
            optimizer=make_optimizer(config.train, data.learning_rate,
                                     steps_per_epoch=data.steps_per_epoch),
            loss=make_loss(data.num_classes, config.train.label_smoothing),
            metrics=["accuracy"])
        if state is not None:
            state.load(model)
    return model


def make_optimizer(train: TrainConfig, learning_rate: float, *,
                   steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of `train`: its schedule (a cosine decays over all
    `train.epochs`), decoupled weight decay (biases exempt; adam becomes
    AdamW) and gradient clipping."""
    rate = learning_rate
    if train.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, train.epochs * steps_per_epoch))
    options = {"learning_rate": rate}
    if train.clipnorm:
        options["clipnorm"] = train.clipnorm
    optimizer_class = OPTIMIZERS[train.optimizer]
    if train.weight_decay:
        options["weight_decay"] = train.weight_decay
        if train.optimizer == "adam":
            optimizer_class = keras.optimizers.AdamW
    optimizer = optimizer_class(**options)
    if train.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing from integer labels
    (Keras' sparse loss takes no smoothing)."""

    def __init__(self, num_classes: int, label_smoothing: float, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        return keras.losses.categorical_crossentropy(
            keras.ops.one_hot(labels, self.num_classes), y_pred,
            label_smoothing=self.label_smoothing)


def make_loss(num_classes: int, label_smoothing: float
              ) -> keras.losses.Loss:
    """Cross-entropy for `num_classes` (a sigmoid unit for 2)."""
    if num_classes == 2:
        return keras.losses.BinaryCrossentropy(
            label_smoothing=label_smoothing)
    if label_smoothing:
        return SparseSmoothedCrossentropy(num_classes, label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def plan_epochs(config: Config, workdir: pathlib.Path, done: int, *,
                report: Report) -> tuple[EpochRecorder, BestEpoch, int]:
    """The history and best-epoch callbacks (carrying on from `done`
    epochs) and the epoch to train up to."""
    recorder = EpochRecorder(workdir, epochs=config.train.epochs,
                             report=report)
    best = BestEpoch(recorder, workdir / BEST_WEIGHTS,
                     objective=config.train.objective,
                     patience=config.train.early_stopping_patience,
                     restore=config.train.restore_best_weights)
    epochs = config.train.epochs
    if done and (done >= epochs or best.patience_spent()):
        report(f"resuming after epoch {done}/{epochs}: training had ended")
        epochs = done  # it had run its epochs or stopped early
    elif done:
        report(f"resuming at epoch {done + 1}/{epochs} from the last "
               "finished epoch")
    return recorder, best, epochs


def train_model(model: keras.Model, data: RunData, *, initial_epoch: int,
                epochs: int, callbacks: Sequence[keras.callbacks.Callback]
                ) -> None:
    """Fits from `initial_epoch` to `epochs`, validating every epoch."""
    model.fit(data.datasets["train"], validation_data=data.datasets[
        "validation"], initial_epoch=initial_epoch, epochs=epochs,
        callbacks=list(callbacks), shuffle=False, verbose=0)


def evaluate_model(model: keras.Model, data: RunData, config: Config,
                   rows: Sequence[dict], *, stopped_early: bool,
                   evaluate_test: bool) -> dict:
    """The run's metrics: its curves judged, and (with `evaluate_test`)
    the test split evaluated once training has ended (the model that is
    exported)."""
    objective = config.train.objective
    figures = verdict.analyze(rows, num_classes=data.num_classes,
                              objective=objective)
    diverged = figures["verdict"] == "diverged"
    top = best_row(rows, objective) or {}
    last = rows[-1] if rows else {}
    metrics = {
        "status": "diverged" if diverged else "completed",
        "objective": objective,
        "best_objective": top.get(objective, math.nan),
        "best_epoch": top.get("epoch", 0),
        "best_val_accuracy": top.get("val_accuracy", math.nan),
        "best_val_loss": top.get("val_loss", math.nan),
        "accuracy_gap_at_best": top.get("accuracy_gap", math.nan),
        "epochs_run": len(rows),
        "stopped_early": stopped_early,
        "final_train_loss": last.get("loss", math.nan),
        "final_train_accuracy": last.get("accuracy", math.nan),
        "final_val_loss": last.get("val_loss", math.nan),
        "final_val_accuracy": last.get("val_accuracy", math.nan),
        "final_accuracy_gap": last.get("accuracy_gap", math.nan),
        "final_loss_gap": last.get("loss_gap", math.nan),
        "test_loss": math.nan,
        "test_accuracy": math.nan,
        "parameters": model.count_params(),
        "seconds_per_epoch": (statistics.median(r["seconds"] for r in rows)
                              if rows else math.nan),
        "overfit_onset_epoch": figures["overfit_onset_epoch"],
        "gap_slope": figures["gap_slope"],
        "verdict": figures["verdict"],
        "verdict_reason": figures["verdict_reason"],
    }
    if evaluate_test and "test" in data.datasets and not diverged:
        test = model.evaluate(data.datasets["test"], verbose=0,
                              return_dict=True)
        metrics["test_loss"] = float(test["loss"])
        metrics["test_accuracy"] = float(test["accuracy"])
    return metrics


def evaluate_on_test(model_path: pathlib.Path, splits: TextSplits) -> dict:
    """The exported model at `model_path` on the test split, as a user
    would run it (raw texts in): `{"test_loss", "test_accuracy"}`, NaN
    when the data has no test split."""
    if splits.test is None:
        return {"test_loss": math.nan, "test_accuracy": math.nan}
    model = keras.models.load_model(model_path)
    probabilities = model.predict(np.asarray(splits.test.texts, dtype=object),
                                  batch_size=256, verbose=0)
    return score_probabilities(probabilities, splits.test.labels)


def score_probabilities(probabilities: np.ndarray,
                        labels: np.ndarray) -> dict:
    """Cross-entropy and accuracy of predicted probabilities, as Keras
    computes them (one sigmoid unit: class 1 above 0.5)."""
    p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
    if p.shape[-1] == 1:
        p, y = p[:, 0], labels.astype(np.float64)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        accuracy = np.mean((p > 0.5) == (y == 1))
    else:
        loss = -np.mean(np.log(p[np.arange(len(labels)), labels]))
        accuracy = np.mean(np.argmax(p, axis=-1) == labels)
    return {"test_loss": float(loss), "test_accuracy": float(accuracy)}


def export_model(vectorizer: keras.layers.TextVectorization,
                 model: keras.Model) -> keras.Model:
    """The end-to-end model: a batch of raw strings in, probabilities out.

    It holds a copy of `model` without its optimizer (inference needs
    none, and a mixed-precision one would not load back as it was)."""
    inference = keras.models.clone_model(model)
    inference.set_weights(model.get_weights())
    texts = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(texts, inference(vectorizer(texts)), name="rnntune")


def export(workdir: pathlib.Path,
           vectorizer: keras.layers.TextVectorization,
           model: keras.Model) -> None:
    """Saves the end-to-end model as `model.keras`, whole or not at all."""
    partial = workdir / ".partial.model.keras"
    export_model(vectorizer, model).save(partial)
    os.replace(partial, workdir / "model.keras")


def describe(metrics: dict) -> str:
    """One line summing up a run's metrics."""
    return (f"best {metrics['objective']} {metrics['best_objective']:.4f} "
            f"at epoch {metrics['best_epoch']}, test accuracy "
            f"{metrics['test_accuracy']:.4f}, verdict {metrics['verdict']}")


def retrain_on_train_and_validation(config: Config, workdir, *, epochs: int,
                                    report: Report = print) -> dict:
    """Trains `config` on train + validation for `epochs` epochs.

    For exporting a chosen configuration: no early stopping and no best-
    epoch restore (there is no held-out validation left); the validation
    metrics it reports are on texts it trained on, and only the test
    metrics are held out.
    """
    splits = load_splits(config.data)
    merged = dataclasses.replace(splits, train=Split(
        texts=np.concatenate([splits.train.texts, splits.validation.texts]),
        labels=np.concatenate([splits.train.labels,
                               splits.validation.labels])))
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, epochs=max(1, epochs), min_examples_seen=0,
        early_stopping_patience=0, restore_best_weights=False))
    return train_and_evaluate(config, workdir, splits=merged, report=report)


def continue_from(parent: pathlib.Path, workdir: pathlib.Path) -> bool:
    """Seeds `workdir` with the training state `parent` kept, so the next
    `train_and_evaluate` there continues from the parent's last epoch (for
    a longer budget of the same configuration, as Hyperband's rounds).

    Returns:
        Whether there was a state to continue from.
    """
    mine, theirs = TrainingState(workdir), TrainingState(parent)
    theirs.recover()
    if mine.recover() or not theirs.epoch:
        return False
    mine.seed_from(theirs.path)
    return True
