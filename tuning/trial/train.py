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

import csv
import dataclasses
import json
import math
import os
import pathlib
import shutil
import statistics
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from data_pipeline.pipeline import VectorizedSplits
from data_pipeline.sources import Split, TextSplits, load_splits
from data_pipeline.text import save_vocabulary
from models.builder import build_model
from tuning.trial import verdict
from tuning.trial.verdict import best_row
from tuning.trial.state import (CARRIED, CommitEachEpoch, TrainingState,
                               save_weights_atomic)
from tuning.trial.devices import describe as describe_devices
from tuning.trial.files import write_atomic, write_json
from tuning.trial.tb_layout import write_layout
from tuning.trial.config import (Config, ConfigError, WorkdirError, differences,
                           from_dict)

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                  "accuracy_gap", "loss_gap", "seconds", "ended_at")

LOG_RUNS = ("train", "validation", "gap")

Report = Callable[[str], None]


def read_history(path: pathlib.Path) -> list[dict[str, float]]:
    """Rows of a `history.csv`, `epoch` as int and the rest as floats."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: int(v) if k == "epoch" else float(v)
                 for k, v in row.items()} for row in csv.DictReader(f)]


class EpochRecorder(keras.callbacks.Callback):
    """Keeps `history.csv` and the gap scalars; reports each epoch.

    Rows are keyed by epoch, so an epoch redone after a resume replaces its
    row instead of adding one.
    """

    def __init__(self, workdir: pathlib.Path, *, epochs: int,
                 report: Report):
        super().__init__()
        self.path = workdir / "history.csv"
        self.rows = read_history(self.path)
        self.epochs = epochs
        self.report = report
        self._writer = tf.summary.create_file_writer(
            str(workdir / "logs" / "gap"))
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", math.nan)),
            "accuracy": float(logs.get("accuracy", math.nan)),
            "val_loss": float(logs.get("val_loss", math.nan)),
            "val_accuracy": float(logs.get("val_accuracy", math.nan)),
        }
        row["accuracy_gap"] = row["accuracy"] - row["val_accuracy"]
        row["loss_gap"] = row["val_loss"] - row["loss"]
        row["seconds"] = time.perf_counter() - self._t0
        row["ended_at"] = time.time()
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]]
        self.rows.append(row)
        lines = [",".join(HISTORY_FIELDS)]
        lines += [",".join(repr(r[k]) for k in HISTORY_FIELDS)
                  for r in self.rows]
        write_atomic(self.path, "\n".join(lines) + "\n")
        with self._writer.as_default(step=epoch):
            tf.summary.scalar("epoch_accuracy_gap", row["accuracy_gap"])
            tf.summary.scalar("epoch_loss_gap", row["loss_gap"])
        self._writer.flush()
        self.report(
            f"epoch {row['epoch']}/{self.epochs}  loss {row['loss']:.4f}  "
            f"accuracy {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}"
            f"  val_accuracy {row['val_accuracy']:.4f}  "
            f"gap {row['accuracy_gap']:+.4f}  {row['seconds']:.1f}s")

    def on_train_end(self, logs=None):
        self._writer.close()


class BestEpoch(keras.callbacks.Callback):
    """Saves the best epoch's weights; early stopping; restores the best.

    Its state lives in the recorder's rows and a weights file, so it
    survives a resume, unlike `keras.callbacks.EarlyStopping`.
    """

    def __init__(self, recorder: EpochRecorder, weights_path: pathlib.Path,
                 *, objective: str, patience: int, restore: bool):
        super().__init__()
        self.recorder = recorder
        self.weights_path = weights_path
        self.objective = objective
        self.patience = patience
        self.restore = restore
        self.stopped_early = False

    def patience_spent(self) -> bool:
        """Whether the recorded epochs already call for a stop."""
        rows = self.recorder.rows
        best = best_row(rows, self.objective)
        return bool(self.patience and best is not None
                    and rows[-1]["epoch"] - best["epoch"] >= self.patience)

    def on_train_begin(self, logs=None):
        self.stopped_early = self.patience_spent()  # a resumed early stop

    def on_epoch_end(self, epoch, logs=None):
        rows = self.recorder.rows
        if best_row(rows, self.objective) is rows[-1]:
            save_weights_atomic(self.model, self.weights_path)
        if self.patience_spent():
            self.model.stop_training = True
            self.stopped_early = True

    def on_train_end(self, logs=None):
        rows = self.recorder.rows
        best = best_row(rows, self.objective)
        if (self.restore and best is not None and best is not rows[-1]
                and self.weights_path.exists()):
            self.model.load_weights(self.weights_path)


def check_workdir(workdir: pathlib.Path, config: Config) -> dict | None:
    """Returns the finished run's metrics if `workdir` already holds one."""
    path = workdir / "config.json"
    if not path.exists():
        return None
    try:
        previous = from_dict(json.loads(path.read_text())["config"])
    except (ValueError, KeyError, ConfigError) as e:
        raise WorkdirError(f"{path}: unreadable run config ({e})") from None
    changed = differences(previous, config)
    if changed:
        raise WorkdirError(
            f"{workdir} holds a run with another config ({'; '.join(changed)}"
            "); choose another --workdir or remove it")
    metrics = workdir / "metrics.json"
    return json.loads(metrics.read_text()) if metrics.exists() else None


def _start_fresh(workdir: pathlib.Path) -> None:
    """Drops a previous attempt's outputs when no epoch can be resumed."""
    for name in CARRIED:
        (workdir / name).unlink(missing_ok=True)
    # Only the runs this function writes: logs/ itself may hold a tuner's
    # HParams session for this trial.
    for run in LOG_RUNS:
        shutil.rmtree(workdir / "logs" / run, ignore_errors=True)


def export_model(vectorizer: keras.layers.TextVectorization,
                 model: keras.Model) -> keras.Model:
    """The end-to-end model: a batch of raw strings in, probabilities out."""
    texts = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(texts, model(vectorizer(texts)), name="rnntune")


def _evaluate(model, dataset) -> dict[str, float]:
    values = model.evaluate(dataset, verbose=0, return_dict=True)
    return {k: float(v) for k, v in values.items()}


def train_and_evaluate(
    config: Config,
    workdir: str | os.PathLike,
    *,
    strategy: tf.distribute.Strategy | None = None,
    splits: TextSplits | None = None,
    vectorized: VectorizedSplits | None = None,
    report: Report = print,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    keep_state: bool = False,
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
        callbacks: more Keras callbacks, run after each epoch's history row
            and backup are written (the tuners report epochs through them).
        keep_state: keep the training state (`backup/`, best weights) after
            the run, so another run can continue from it (`continue_from`).

    Returns:
        The metrics also written to `metrics.json`.

    Raises:
        DataError: the data source cannot be read.
        WorkdirError: `workdir` holds a run with another config.
    """
    workdir = pathlib.Path(workdir)
    finished = check_workdir(workdir, config)
    if finished is not None:
        if not keep_state:  # killed between metrics.json and the cleanup
            _discard_state(workdir)
        report(f"{workdir}: already finished, reusing its metrics")
        return finished
    # Read and check the data before anything is written.
    if splits is None:
        splits = load_splits(config.data)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    per_replica_batch_size = config.train.batch_size
    global_batch_size = per_replica_batch_size * replicas
    learning_rate = config.train.learning_rate * (
        replicas if config.train.scale_learning_rate else 1)
    num_classes = len(splits.class_names)
    started = time.perf_counter()

    keras.utils.set_random_seed(config.train.seed)
    if vectorized is None:
        vectorized = VectorizedSplits.build(
            splits, max_tokens=config.data.max_tokens,
            sequence_length=config.data.sequence_length)
    vectorizer = vectorized.vectorizer
    datasets = {
        name: vectorized.dataset(name, global_batch_size=global_batch_size,
                                 shuffle=name == "train",
                                 seed=config.data.seed)
        for name in vectorized.ids
    }

    for note in splits.notes:
        report(f"data: {note}")
    workdir.mkdir(parents=True, exist_ok=True)
    state = TrainingState(workdir)
    done = state.recover()
    if not done:
        _start_fresh(workdir)
    runtime = {
        "replicas": replicas,
        "per_replica_batch_size": per_replica_batch_size,
        "global_batch_size": global_batch_size,
        "strategy": type(strategy).__name__,
        "devices": describe_devices(strategy),
        "learning_rate": learning_rate,
        "data": splits.description,
        "examples": {name: len(split) for name, split in (
            ("train", splits.train), ("validation", splits.validation),
            ("test", splits.test)) if split is not None},
        "class_names": list(splits.class_names),
        "data_reading": splits.stats,
        "vocabulary_size": vectorizer.vocabulary_size(),
    }
    write_json(workdir / "config.json",
               {"config": config.to_dict(), "runtime": runtime})
    save_vocabulary(vectorizer, workdir / "vocabulary.txt")
    write_layout(workdir)
    write_atomic(workdir / "labels.txt",
                  "".join(f"{name}\n" for name in splits.class_names))

    with strategy.scope():
        model = build_model(config.model,
                            vocab_size=vectorizer.vocabulary_size(),
                            sequence_length=config.data.sequence_length,
                            num_classes=num_classes)
        model.compile(
            optimizer=OPTIMIZERS[config.train.optimizer](
                learning_rate=learning_rate),
            loss=("binary_crossentropy" if num_classes == 2
                  else "sparse_categorical_crossentropy"),
            metrics=["accuracy"],
        )
        if done:
            state.load(model)
    recorder = EpochRecorder(workdir, epochs=config.train.epochs,
                             report=report)
    best = BestEpoch(recorder, workdir / "best.weights.h5",
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
    # The commit goes last: an epoch is only marked done once its history
    # row and best-weights checkpoint are written.
    fit_callbacks = [
        keras.callbacks.TerminateOnNaN(),
        recorder,
        best,
        keras.callbacks.TensorBoard(workdir / "logs", write_graph=False),
        CommitEachEpoch(state),
        *callbacks,
    ]
    model.fit(datasets["train"], validation_data=datasets["validation"],
              initial_epoch=done, epochs=epochs,
              callbacks=fit_callbacks, shuffle=False, verbose=0)

    rows = recorder.rows
    figures = verdict.analyze(rows, num_classes=num_classes,
                              objective=config.train.objective)
    word, reason = figures["verdict"], figures["verdict_reason"]
    diverged = word == "diverged"
    top = best_row(rows, config.train.objective) or {}
    last = rows[-1] if rows else {}
    metrics = {
        "status": "diverged" if diverged else "completed",
        "objective": config.train.objective,
        "best_objective": top.get(config.train.objective, math.nan),
        "best_epoch": top.get("epoch", 0),
        "best_val_accuracy": top.get("val_accuracy", math.nan),
        "best_val_loss": top.get("val_loss", math.nan),
        "accuracy_gap_at_best": top.get("accuracy_gap", math.nan),
        "epochs_run": len(rows),
        "stopped_early": best.stopped_early,
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
        "verdict": word,
        "verdict_reason": reason,
    }
    if "test" in datasets and not diverged:
        test = _evaluate(model, datasets["test"])
        metrics["test_loss"] = test["loss"]
        metrics["test_accuracy"] = test["accuracy"]
    if not diverged:
        partial = workdir / ".partial.model.keras"
        export_model(vectorizer, model).save(partial)
        os.replace(partial, workdir / "model.keras")
    metrics["wall_seconds"] = time.perf_counter() - started
    write_json(workdir / "metrics.json", metrics)
    # Only now that the run is recorded finished: killed before this, it
    # resumes from the state instead of training again.
    if not keep_state:
        _discard_state(workdir)
    return metrics


def _discard_state(workdir: pathlib.Path) -> None:
    TrainingState(workdir).discard()
    (workdir / "best.weights.h5").unlink(missing_ok=True)


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
        config.train, epochs=max(1, epochs), early_stopping_patience=0,
        restore_best_weights=False))
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
