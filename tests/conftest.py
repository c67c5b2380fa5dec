"""Shared fixtures. TensorFlow and Ray are configured here, before any
test module imports them.

The CPU is split into two logical devices at import so that
`MirroredStrategy(["/cpu:0", "/cpu:1"])` exercises the real multi-replica
path (without the split, `fit` hangs).
"""

import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Ray reads these when it is first imported, and test modules import it
# before `tuning.backends.ray_tune` (which sets them too) can: without the last,
# Ray binds the machine's routable address instead of loopback.
for _name, _value in (("RAY_USAGE_STATS_ENABLED", "0"),
                      ("RAY_AUTH_MODE", "disabled"),
                      ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")):
    os.environ.setdefault(_name, _value)

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from tuning.trial.config import Config, apply_overrides  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]

SMOKE = [
    "data.max_examples=400", "data.max_tokens=500",
    "data.sequence_length=20", "model.units=8", "model.num_layers=1",
    "model.embedding_dim=8", "model.head_units=4", "train.epochs=2",
    "train.batch_size=32",
]


def run_cli(*args: str, stdin: str | None = None, timeout: float = 300,
            cwd: pathlib.Path = REPO, **kwargs) -> subprocess.CompletedProcess:
    """Runs `python -m launch ARGS` in a fresh process, in `cwd`."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "launch", *args], input=stdin,
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
        **kwargs)


@pytest.fixture(scope="session")
def smoke_config() -> Config:
    """A seconds-long run on 400 embedded IMDB reviews."""
    return apply_overrides(Config(), SMOKE)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, smoke_config):
    """One finished training run shared by the tests that only read it."""
    from tuning.trial.train import train_and_evaluate

    workdir = tmp_path_factory.mktemp("smoke_run")
    metrics = train_and_evaluate(smoke_config, workdir, report=lambda _: None)
    return workdir, metrics


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory) -> pathlib.Path:
    """300 embedded IMDB reviews as a CSV file (for `data.path` choices)."""
    import csv

    from data_pipeline.config import DataConfig
    from data_pipeline.sources import load_splits

    splits = load_splits(DataConfig(source="imdb", max_examples=300,
                                    test_split=0))
    path = tmp_path_factory.mktemp("csv") / "reviews.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for part in (splits.train, splits.validation):
            writer.writerows(zip(part.texts, part.labels))
    return path


def study_spec(base: Config, space: dict, *, backend: str, algorithm: str,
               max_trials: int, max_epochs: int = 2, **kwargs):
    from tuning.study.space import from_dict
    from tuning.study.spec import StudySpec

    return StudySpec(base=base, space=from_dict(space, name="test"),
                     backend=backend, algorithm=algorithm,
                     max_trials=max_trials, max_epochs=max_epochs, **kwargs)


TINY_SPACE = {
    "model.cell": {"choice": ["gru", "lstm"]},
    "model.units": {"choice": [4, 8]},
    "train.learning_rate": {"float": [1e-3, 1e-2], "log": True},
    "model.bidirectional": {"choice": [False, True],
                            "when": {"model.cell": ["lstm"]}},
}
