"""Running rnntune's command line in a fresh process, as a user does."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
# The smoke preset on fewer texts and epochs, as `--set` arguments (the
# `smoke_config` fixture is the same config).
SMALL = ["--set", "data.max_examples=400", "--set", "train.epochs=2"]


def run_cli(*args: str, stdin: str | None = None, timeout: float = 300,
            cwd: pathlib.Path = REPO, **kwargs) -> subprocess.CompletedProcess:
    """Runs `python -m launch ARGS` in a fresh process, in `cwd`."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "launch", *args], check=False, input=stdin,
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
        **kwargs)
