"""Building studies and reading what they leave: a `StudySpec` from a
space, the tiny space, a study's results table and histories, and a
study process killed with -9 and resumed."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile

from commands import REPO
from polling import wait_until

from tuning.trial.history import read_history

TINY_SPACE = {
    "model.cell": {"choice": ["gru", "lstm"]},
    "model.units": {"choice": [4, 8]},
    "train.learning_rate": {"float": [1e-3, 1e-2], "log": True},
    "model.bidirectional": {"choice": [False, True],
                            "when": {"model.cell": ["lstm"]}},
}


def study_spec(base, space: dict, *, backend: str, algorithm: str,
               max_trials: int, max_epochs: int = 2, **kwargs):
    """A `StudySpec` searching `space` (a space file's dict) from `base`."""
    from tuning.study.space import from_dict
    from tuning.study.spec import StudySpec

    return StudySpec(base=base, space=from_dict(space, name="test"),
                     backend=backend, algorithm=algorithm,
                     max_trials=max_trials, max_epochs=max_epochs, **kwargs)


def trial_rows(workdir) -> dict[str, dict]:
    """A study's results table (`trials.json`), by trial id."""
    return {r["trial_id"]: r for r in json.loads(
        (pathlib.Path(workdir) / "trials.json").read_text())}


def history_epochs(workdir) -> dict[str, list[int]]:
    """The epochs in each trial's `history.csv`, by trial id."""
    return {d.name: [r["epoch"] for r in read_history(d / "history.csv")]
            for d in sorted((workdir / "trials").iterdir())
            if (d / "history.csv").exists()}


def kill_and_resume(workdir, args, *, victim_trial: int, min_epochs: int,
                    between=lambda: None, sig=signal.SIGKILL):
    """Runs `rnntune tune ARGS`, sends its process group `sig` (kill -9;
    SIGINT is a terminal's Ctrl-C, and the study then ends by itself) once
    trial number `victim_trial` has `min_epochs` epochs, calls
    `between()`, then resumes the study.

    Returns:
        (each trial's history epochs before the resume, the `metrics.json`
        times of the trials finished before it, the resume's output, the
        stopped study's (exit status, stdout and stderr)).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    output = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "launch", "tune", *args, "--workdir",
         str(workdir)], cwd=REPO, env=env, stdout=output,
        stderr=subprocess.STDOUT, start_new_session=True)

    def victim_has_epochs():
        epochs = history_epochs(workdir) if (
            workdir / "trials").exists() else {}
        names = sorted(epochs)
        if (len(names) > victim_trial
                and len(epochs[names[victim_trial]]) >= min_epochs):
            return True
        assert process.poll() is None, "the study ended before the kill"
        return False

    try:
        wait_until(victim_has_epochs, timeout=300, interval=0.05,
                   what=f"trial number {victim_trial} to finish "
                   f"{min_epochs} epochs")
        os.killpg(process.pid, sig)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output.seek(0)
    stopped = (process.returncode, output.read())
    output.close()
    between()
    before = history_epochs(workdir)
    metrics_before = {d.name: (d / "metrics.json").stat().st_mtime_ns
                      for d in (workdir / "trials").iterdir()
                      if (d / "metrics.json").exists()}
    resumed = subprocess.run(
        [sys.executable, "-m", "launch", "tune", "--resume", "--workdir",
         str(workdir)], check=False, cwd=REPO, env=env,
        capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return before, metrics_before, resumed.stdout, stopped
