"""A run's training state, crash-consistent: `WORKDIR/backup/`.

At the end of every epoch the whole state (model and optimizer weights,
the epoch, and the run files that must agree with them) is written to
`backup.new/` and then renamed into place, so `backup/` always holds one
whole epoch's state, whenever the process is killed:

    backup/latest.weights.h5       model and optimizer variables
    backup/training_metadata.json  {"epoch": N}, written last
    backup/history.csv, backup/best.weights.h5   copies of the run's own

`TrainingState.recover()` finishes or undoes an interrupted commit and puts
the run's `history.csv` and `best.weights.h5` back as they were at the
committed epoch.
"""

import json
import os
import pathlib
import shutil

import keras

STATE_DIR = "backup"
WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
# Run files that belong to the state: restored with it, carried with it
# (Ray checkpoints, Hyperband rounds continuing a parent trial).
CARRIED = ("history.csv", "best.weights.h5")


def save_weights_atomic(model: keras.Model, path: pathlib.Path) -> None:
    """`model.save_weights(path)`, never leaving half a file at `path`."""
    partial = path.with_name(".partial." + path.name)
    model.save_weights(partial, overwrite=True)
    os.replace(partial, path)


def _copy_atomic(source: pathlib.Path, target: pathlib.Path) -> None:
    partial = target.with_name(".partial." + target.name)
    shutil.copyfile(source, partial)
    os.replace(partial, target)


class TrainingState:
    """The training state of the run in `workdir`."""

    def __init__(self, workdir: pathlib.Path):
        self.workdir = workdir
        self.path = workdir / STATE_DIR
        self._new = workdir / (STATE_DIR + ".new")
        self._old = workdir / (STATE_DIR + ".old")

    @property
    def epoch(self) -> int:
        """The last committed epoch (0: none)."""
        path = self.path / METADATA
        return json.loads(path.read_text())["epoch"] if path.exists() else 0

    def recover(self) -> int:
        """Completes or drops an interrupted commit, then restores the run
        files to the committed epoch.

        Returns:
            The committed epoch (0: nothing to resume).
        """
        if (self._new / METADATA).exists():  # written whole: the newest
            shutil.rmtree(self.path, ignore_errors=True)
            os.replace(self._new, self.path)
        shutil.rmtree(self._new, ignore_errors=True)
        if not self.path.exists() and self._old.exists():
            os.replace(self._old, self.path)
        shutil.rmtree(self._old, ignore_errors=True)
        if not (self.path / METADATA).exists():
            shutil.rmtree(self.path, ignore_errors=True)
            return 0
        for name in CARRIED:
            if (self.path / name).exists():
                _copy_atomic(self.path / name, self.workdir / name)
            else:
                (self.workdir / name).unlink(missing_ok=True)
        return self.epoch

    def commit(self, model: keras.Model, epoch: int) -> None:
        """Saves the state after `epoch` (1-based) finished."""
        shutil.rmtree(self._new, ignore_errors=True)
        self._new.mkdir(parents=True)
        model.save_weights(self._new / WEIGHTS)
        for name in CARRIED:
            if (self.workdir / name).exists():
                shutil.copyfile(self.workdir / name, self._new / name)
        (self._new / METADATA).write_text(json.dumps({"epoch": epoch}))
        if self.path.exists():
            os.replace(self.path, self._old)
        os.replace(self._new, self.path)
        shutil.rmtree(self._old, ignore_errors=True)

    def load(self, model: keras.Model) -> None:
        """Loads the committed weights into `model` (built and compiled)."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.path / WEIGHTS)

    def discard(self) -> None:
        for path in (self.path, self._new, self._old):
            shutil.rmtree(path, ignore_errors=True)

    def copy_to(self, target: pathlib.Path) -> None:
        """Copies the committed state to the directory `target`."""
        shutil.copytree(self.path, target)


class CommitEachEpoch(keras.callbacks.Callback):
    """Commits the training state at the end of every epoch."""

    def __init__(self, state: TrainingState):
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        self.state.commit(self.model, epoch + 1)
