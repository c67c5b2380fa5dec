"""The trial's per-epoch callbacks: its history, its best epoch, the
commit of its training state and the epoch its data is shuffled for.

They keep their state in the run's files (`history.csv`, the best
weights, `backup/`), so a resumed run carries on exactly where it stopped.
"""

import math
import pathlib
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from data_pipeline.pipeline import ShuffleEpoch
from tuning.trial.files import format_duration
from tuning.trial.history import format_epoch, read_history, write_history
from tuning.trial.state import HISTORY, TrainingState, save_weights_atomic
from tuning.trial.verdict import best_row

Report = Callable[[str], None]
# hook(epoch, last): epoch 1-based; last when training ends with it.
EpochHook = Callable[[int, bool], None]


class EpochRecorder(keras.callbacks.Callback):
    """Keeps `history.csv` and the gap scalars; reports each epoch.

    Rows are keyed by epoch, so an epoch redone after a resume replaces its
    row instead of adding one.
    """

    def __init__(self, workdir: pathlib.Path, *, epochs: int,
                 report: Report):
        super().__init__()
        self.path = workdir / HISTORY
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
        row = {"epoch": epoch + 1, **{
            key: float(logs.get(key, math.nan)) for key in (
                "loss", "accuracy", "val_loss", "val_accuracy", "mae",
                "val_mae", "rmse", "val_rmse")}}
        row["accuracy_gap"] = row["accuracy"] - row["val_accuracy"]
        row["loss_gap"] = row["val_loss"] - row["loss"]
        row["seconds"] = time.perf_counter() - self._t0
        row["ended_at"] = time.time()
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]]
        self.rows.append(row)
        write_history(self.path, self.rows)
        with self._writer.as_default(step=epoch):
            if not math.isnan(row["accuracy_gap"]):  # not a regression
                tf.summary.scalar("epoch_accuracy_gap", row["accuracy_gap"])
            tf.summary.scalar("epoch_loss_gap", row["loss_gap"])
        self._writer.flush()
        self.report(format_epoch(row, self.epochs))

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

    def _stops_early(self) -> bool:
        """Patience spent before the last planned epoch (spent at the
        last, the run simply ends)."""
        return (self.patience_spent()
                and self.recorder.rows[-1]["epoch"] < self.recorder.epochs)

    def on_train_begin(self, logs=None):
        self.stopped_early = self._stops_early()  # a resumed early stop

    def on_epoch_end(self, epoch, logs=None):
        rows = self.recorder.rows
        if best_row(rows, self.objective) is rows[-1]:
            save_weights_atomic(self.model, self.weights_path)
        if self.patience_spent():
            self.model.stop_training = True
            self.stopped_early = self._stops_early()

    def on_train_end(self, logs=None):
        rows = self.recorder.rows
        best = best_row(rows, self.objective)
        if (self.restore and best is not None and best is not rows[-1]
                and self.weights_path.exists()):
            self.model.load_weights(self.weights_path)


class CommitEachEpoch(keras.callbacks.Callback):
    """Commits the training state at the end of every epoch."""

    def __init__(self, state: TrainingState):
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        self.state.commit(self.model, epoch + 1)


class ShuffleForEpoch(keras.callbacks.Callback):
    """Tells the training data which epoch begins, before its pass does,
    so that epoch `e` takes epoch `e`'s order in a resumed run too."""

    def __init__(self, epochs: ShuffleEpoch):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.set(epoch)


class LiveProgress(keras.callbacks.Callback):
    """A status line within each training epoch: the step, the rate and
    the time left, at most every `every` seconds (for a terminal). The
    rate is timed from the end of the first step, which also builds the
    graph."""

    async_safe = True  # reads no tensors: Keras may call it off-thread

    def __init__(self, status: Report, *, epochs: int, every: float = 0.5):
        super().__init__()
        self.status = status
        self.epochs = epochs
        self.every = every
        self._epoch, self._first, self._shown = 0, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch == 0:
            self._first = self._shown = now
            return
        if now - self._shown < self.every:
            return
        self._shown = now
        done, steps = batch + 1, self.params.get("steps")
        rate = batch / max(now - self._first, 1e-9)
        text = (f"epoch {self._epoch}/{self.epochs}  step {done}"
                + (f"/{steps}" if steps else "") + f"  {rate:.1f} steps/s")
        if steps:
            text += f"  {format_duration((steps - done) / rate)} left"
        self.status(text)


class EpochHooks(keras.callbacks.Callback):
    """Calls plain `hook(rows, last)` functions at the end of every epoch:
    `rows` are the run's history rows so far (the epoch's is the last),
    `last` says the epoch budget is reached or training was stopped."""

    def __init__(self, recorder: EpochRecorder, hooks):
        super().__init__()
        self.recorder = recorder
        self.hooks = tuple(hooks)

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 >= self.params["epochs"] or self.model.stop_training
        for hook in self.hooks:
            hook(list(self.recorder.rows), bool(last))


# `train.lr_schedule=plateau`: the rate is halved after every epoch that
# does not improve the objective.
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 1


def plateau_learning_rate(rows, *, base: float, objective: str) -> float:
    """The learning rate for the epoch after `rows` (the finished epochs,
    in order) under `train.lr_schedule=plateau`, from `base`: a pure
    function of the history, so a resumed run takes up the same rate."""
    rate, wait = base, 0
    for i, row in enumerate(rows):
        if best_row(rows[:i + 1], objective) is row:
            wait = 0
            continue
        wait += 1
        if wait >= PLATEAU_PATIENCE:
            rate, wait = rate * PLATEAU_FACTOR, 0
    return rate


class PlateauSchedule(keras.callbacks.Callback):
    """Sets each epoch's learning rate by `plateau_learning_rate` and says
    when it drops."""

    def __init__(self, recorder: EpochRecorder, *, base: float,
                 objective: str, report: Report):
        super().__init__()
        self.recorder = recorder
        self.base = base
        self.objective = objective
        self.report = report

    def on_epoch_begin(self, epoch, logs=None):
        rows = self.recorder.rows
        rate = plateau_learning_rate(rows, base=self.base,
                                     objective=self.objective)
        if rows and rate < plateau_learning_rate(
                rows[:-1], base=self.base, objective=self.objective):
            self.report(f"learning rate {rate:.3g} from epoch {epoch + 1}: "
                        f"{self.objective} did not improve")
        self.model.optimizer.learning_rate = rate
