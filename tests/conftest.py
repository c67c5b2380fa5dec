"""Shared fixtures and the test tiers. TensorFlow and Ray are configured
here, before any test module imports them.

The CPU is split into two logical devices at import so that
`MirroredStrategy(["/cpu:0", "/cpu:1"])` exercises the real multi-replica
path (without the split, `fit` hangs).

Tests marked `slow` (real Ray clusters, SLURM, kill-and-resume, browsers,
end-to-end studies) run only with `--slow`; CI passes it.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Runs cache vectorized data under $XDG_CACHE_HOME/rnntune: the tests' own,
# so they neither read nor fill the user's (subprocesses inherit it).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="rnntune-tests-")
# Ray reads these when it is first imported, and test modules import it
# before `tuning.backends.ray_tune` (which sets them too) can: without the
# last, Ray binds the machine's routable address instead of loopback.
for _name, _value in (("RAY_USAGE_STATS_ENABLED", "0"),
                      ("RAY_AUTH_MODE", "disabled"),
                      ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")):
    os.environ.setdefault(_name, _value)

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from commands import SMALL  # noqa: E402
from servers import TensorBoard  # noqa: E402

from launch.presets import get_preset  # noqa: E402
from tuning.trial.config import Config, apply_overrides  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--slow", action="store_true",
        help="run the slow tier too (real Ray clusters, SLURM, "
        "kill-and-resume, browsers, end-to-end studies)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]


@pytest.fixture(scope="session")
def smoke_config() -> Config:
    """The smoke preset (`launch.presets.smoke_variant` of imdb) on fewer
    texts (`commands.SMALL`): seconds per run, for behaviour, not
    learning."""
    return apply_overrides(get_preset("smoke"), dict(
        item.split("=", 1) for item in SMALL[1::2]))


@pytest.fixture(scope="session")
def two_replicas():
    """One MirroredStrategy over the two logical CPUs for every test that
    trains on it: two strategies training in one process can mix up their
    collective ops (a shape mismatch between unrelated batches)."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, smoke_config):
    """One finished training run shared by the tests that only read it."""
    from tuning.trial.train import train_and_evaluate

    workdir = tmp_path_factory.mktemp("smoke_run")
    metrics = train_and_evaluate(smoke_config, workdir, report=lambda _: None)
    return workdir, metrics


@pytest.fixture
def tensorboard():
    """Starts real TensorBoard servers: `tensorboard(logdir)` returns a
    `servers.TensorBoard` on 127.0.0.1 serving `logdir`, once it answers.
    Every server a test started is stopped after it."""
    started = []

    def start(logdir) -> TensorBoard:
        started.append(TensorBoard(logdir))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory) -> "os.PathLike":
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
