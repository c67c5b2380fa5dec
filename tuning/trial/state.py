"""A run's training state, crash-consistent: `WORKDIR/backup/`.

At the end of every epoch the whole state (model and optimizer weights,
the epoch, and the run files that must agree with them) is written to
`backup.new/` and then renamed into place, so `backup/` always holds one
whole epoch's state, whenever the process is killed:

    backup/latest.weights.h5       model and optimizer variables
    backup/training_metadata.json  {"epoch": N, "seed_states": [...]},
                                   written last
    backup/history.csv, backup/best.weights.h5   copies of the run's own

`seed_states` are the model's random seed generators (the draws of its
dropout masks), which Keras' weights leave out: restored with the weights,
the resumed epochs drop what the uninterrupted run's epochs dropped.

`TrainingState.recover()` finishes or undoes an interrupted commit and puts
the run's `history.csv` and `best.weights.h5` back as they were at the
committed epoch.
"""

import json
import os
import pathlib
import shutil
from typing import TYPE_CHECKING

from tuning.trial.files import write_atomic
from tuning.trial.run import RunDir

if TYPE_CHECKING:  # plain Python: only the trial's own calls need Keras
    import keras

# Every file of the training state, named here alone.
STATE_DIR = "backup"
WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
HISTORY = RunDir.HISTORY  # the run's per-epoch rows
BEST_WEIGHTS = "best.weights.h5"  # the best epoch's weights so far
# Run files that belong to the state: restored with it, carried with it
# (Ray checkpoints, Hyperband rounds continuing a parent trial).
CARRIED = (HISTORY, BEST_WEIGHTS)


def _sync(path: pathlib.Path) -> None:
    """Flushes a file's or a directory's entries to disk, so that a rename
    that follows never lands before the data (a power cut, not only a
    kill)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_weights_atomic(model: "keras.Model", path: pathlib.Path) -> None:
    """`model.save_weights(path)`, never leaving half a file at `path`."""
    partial = path.with_name(".partial." + path.name)
    model.save_weights(partial, overwrite=True)
    _sync(partial)
    os.replace(partial, path)


def _copy_atomic(source: pathlib.Path, target: pathlib.Path) -> None:
    partial = target.with_name(".partial." + target.name)
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _read_epoch(directory: pathlib.Path) -> int:
    """The epoch a state directory holds; 0 if it holds no whole state."""
    try:
        return int(json.loads((directory / METADATA).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _seed_variables(model: "keras.Model") -> list:
    """The state variables of `model`'s random seed generators, in layer
    order: `model.variables` beyond `model.weights`."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _seed_states(model: "keras.Model") -> list[list[int]]:
    """Where each of `model`'s random seed generators stands."""
    return [v.numpy().tolist() for v in _seed_variables(model)]


def _restore_seed_states(model: "keras.Model",
                         states: list[list[int]] | None) -> None:
    """Puts `model`'s seed generators where `_seed_states` found them. A
    state saved without them (or by a model with other generators)
    leaves them as they are."""
    variables = _seed_variables(model)
    if states is None or [list(v.shape) for v in variables] != [
            [len(s)] for s in states]:
        return
    for variable, state in zip(variables, states):
        variable.assign(state)  # converted to its dtype


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
        return _read_epoch(self.path)

    def recover(self) -> int:
        """Completes or drops an interrupted commit, then restores the run
        files to the committed epoch.

        Returns:
            The committed epoch (0: nothing to resume).
        """
        if _read_epoch(self._new):  # its metadata is written last
            shutil.rmtree(self.path, ignore_errors=True)
            os.replace(self._new, self.path)
        shutil.rmtree(self._new, ignore_errors=True)
        if not self.path.exists() and self._old.exists():
            os.replace(self._old, self.path)
        shutil.rmtree(self._old, ignore_errors=True)
        if not self.epoch:
            shutil.rmtree(self.path, ignore_errors=True)
            return 0
        for name in CARRIED:
            if (self.path / name).exists():
                _copy_atomic(self.path / name, self.workdir / name)
            else:
                (self.workdir / name).unlink(missing_ok=True)
        return self.epoch

    def _publish(self) -> None:
        """Makes the whole `backup.new/` the state, by renames only."""
        for path in self._new.iterdir():
            _sync(path)
        _sync(self._new)
        if self.path.exists():
            os.replace(self.path, self._old)
        os.replace(self._new, self.path)
        _sync(self.workdir)
        shutil.rmtree(self._old, ignore_errors=True)

    def commit(self, model: "keras.Model", epoch: int) -> None:
        """Saves the state after `epoch` (1-based) finished."""
        shutil.rmtree(self._new, ignore_errors=True)
        self._new.mkdir(parents=True)
        model.save_weights(self._new / WEIGHTS)
        for name in CARRIED:
            if (self.workdir / name).exists():
                shutil.copyfile(self.workdir / name, self._new / name)
        write_atomic(self._new / METADATA, json.dumps(
            {"epoch": epoch, "seed_states": _seed_states(model)}))
        self._publish()

    def seed_from(self, source: pathlib.Path) -> None:
        """Makes a copy of the state directory `source` (another run's, a
        Ray checkpoint) this run's state, metadata copied last."""
        shutil.rmtree(self._new, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, self._new, ignore=lambda _, names: [
            n for n in names if n not in (WEIGHTS, *CARRIED)])
        shutil.copyfile(source / METADATA, self._new / METADATA)
        self._publish()

    def load(self, model: "keras.Model") -> None:
        """Loads the committed weights and seed generator states into
        `model` (built and compiled)."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.path / WEIGHTS)
        metadata = json.loads((self.path / METADATA).read_text())
        _restore_seed_states(model, metadata.get("seed_states"))

    def start_fresh(self) -> None:
        """Drops a previous attempt's run files when no epoch can be
        resumed (the state itself is empty or gone)."""
        for name in CARRIED:
            (self.workdir / name).unlink(missing_ok=True)

    def discard(self) -> None:
        """Drops the state and the best-epoch weights: what exists only
        while the run trains."""
        for path in (self.path, self._new, self._old):
            shutil.rmtree(path, ignore_errors=True)
        (self.workdir / BEST_WEIGHTS).unlink(missing_ok=True)

    def copy_to(self, target: pathlib.Path) -> None:
        """Copies the committed state to the directory `target`."""
        shutil.copytree(self.path, target)
