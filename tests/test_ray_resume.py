"""Ray studies as a user sees them: what they print, and a study killed
with -9 and resumed, whose finished trials stay finished.

The kill test drives a real Ray study in a process of its own (this
module, run as a script) with the stand-in trial function slowed to a
second per epoch, so that the kill lands between a trial's end and Ray's
next experiment snapshot: Ray then restores the finished trial from an
older snapshot, as it does after a real kill.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import stand_in
from commands import REPO, SMALL, run_cli
from polling import wait_until
from studies import TINY_SPACE, history_epochs, study_spec, trial_rows

from tuning.trial.run import StudyDir

EPOCHS = 4
SECONDS_PER_EPOCH = 1.0
# Ray's log lines ("<time>\tWARNING tensorboardx.py:115 -- ..."), which
# must not reach a user: rnntune prints its own.
RAY_LOG_LINE = re.compile(r"\t(WARNING|ERROR) \w+\.py:\d+ -- ")
EPOCH_LINE = re.compile(r"^  \[trial (\w+)\] epoch (\d+)/(\d+) ")


def _slow_trial(config, workdir, *, epoch_hooks=(), **kwargs):
    """The stand-in, a second per epoch (after the backend's hooks)."""
    def pause(rows, last):
        time.sleep(SECONDS_PER_EPOCH)

    return stand_in.fake_trial(config, workdir,
                               epoch_hooks=(*epoch_hooks, pause), **kwargs)


def _study_process(workdir, *args) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [sys.executable, __file__, str(workdir), *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def _epoch_lines(out: str) -> list[tuple[str, int]]:
    return [(m[1], int(m[2])) for m in map(EPOCH_LINE.match,
                                           out.splitlines()) if m]


def _done_counts(out: str) -> list[int]:
    return [int(n) for n in re.findall(r"\] (\d+)/\d+ done", out)]


@pytest.mark.slow
def test_a_study_resumed_after_kill_9_keeps_its_finished_trials(tmp_path):
    workdir = tmp_path / "study"
    study = StudyDir(workdir)
    process = _study_process(workdir)
    try:
        def first_finished():
            assert process.poll() is None, "the study ended before the kill"
            return [run for run in study.trials()
                    if run.metrics_path.exists()]

        wait_until(first_finished, timeout=240, interval=0.05,
                   what="a trial to finish")
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    finished = {run.name: (run.metrics_path.stat().st_mtime_ns,
                           run.history_path.read_bytes())
                for run in study.trials() if run.metrics_path.exists()}
    assert finished
    resumed = _study_process(workdir, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    for name, (mtime, history) in finished.items():
        run = study.trial(name)
        assert run.metrics_path.stat().st_mtime_ns == mtime, name
        assert run.history_path.read_bytes() == history, name
        assert f"[trial {name}]" not in out  # not trained, not recorded
    counts = _done_counts(out)
    assert counts == sorted(counts) and counts[-1] == 3
    rows = trial_rows(workdir)
    assert len(rows) == 3
    assert all(r["status"] == "completed" for r in rows.values())
    assert all(e == list(range(1, EPOCHS + 1))
               for e in history_epochs(workdir).values())
    # The resumed trials' epochs, each printed once with one prefix.
    lines = _epoch_lines(out)
    assert lines and len(lines) == len(set(lines))
    assert "[trial" not in "".join(
        line.split("]", 1)[1] for line in out.splitlines()
        if line.startswith("  [trial "))
    assert not RAY_LOG_LINE.search(err), err[-3000:]


@pytest.mark.slow
def test_a_ray_study_prints_each_epoch_once_and_no_ray_notices(tmp_path):
    out = run_cli("tune", "--preset", "smoke", "--space", "tiny",
                  "--backend", "ray", "--algorithm", "random",
                  "--max-trials", "2", *SMALL, "--workdir",
                  str(tmp_path / "study"))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = _epoch_lines(out.stdout)
    assert sorted(lines) == sorted(
        (trial, epoch) for trial in trial_rows(tmp_path / "study")
        for epoch in (1, 2))
    for line in out.stdout.splitlines():
        assert line.count("[trial ") <= 1, line
    assert not RAY_LOG_LINE.search(out.stderr), out.stderr[-3000:]


def main(argv: list[str]) -> None:
    """Runs (or with `--resume`, resumes) the slow stand-in's study in
    `argv[0]`, printing its lines."""
    import pathlib

    from ray import cloudpickle

    from launch.presets import get_preset
    from tuning.trial.config import apply_overrides
    from tuning.tune import run_study

    # Ray's workers cannot import the tests' modules: they travel whole.
    cloudpickle.register_pickle_by_value(stand_in)
    workdir = pathlib.Path(argv[0])
    spec = None
    if "--resume" not in argv:
        base = apply_overrides(get_preset("smoke"), {
            **dict(item.split("=", 1) for item in SMALL[1::2]),
            "train.early_stopping_patience": 0})
        spec = study_spec(base, TINY_SPACE, backend="ray",
                          algorithm="random", max_trials=3,
                          max_epochs=EPOCHS)
    run_study(workdir, spec, resume=spec is None, trial_function=_slow_trial)


if __name__ == "__main__":
    main(sys.argv[1:])
