"""Devices, MirroredStrategy, Keras Tuner chief and workers, Ray clusters:
all with real processes on this machine."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import pytest

from tuning.trial.config import ConfigError
from tuning.trial.devices import Devices, parse_devices
from tuning.trial.history import read_history

from commands import REPO, SMALL, run_cli
from polling import wait_until
from servers import check_hparams_on_server

TINY_KEYS = ["model.cell", "model.units", "train.learning_rate"]


@pytest.mark.parametrize("text, expected", [
    ("auto", Devices("auto")), ("cpu", Devices("cpu")),
    ("cpu:4", Devices("cpu", count=4)), ("gpu:all", Devices("gpu")),
    ("gpu:0,2", Devices("gpu", gpus=(0, 2))), ("GPU:1", Devices("gpu",
                                                               gpus=(1,))),
])
def test_parse_devices(text, expected):
    assert parse_devices(text) == expected
    assert parse_devices(str(expected)) == expected


@pytest.mark.parametrize("text", ["tpu", "cpu:0", "cpu:x", "gpu:", "gpu:1,1",
                                  "gpu:-1", "auto:2"])
def test_bad_devices_are_errors(text):
    with pytest.raises(ConfigError, match="expected auto, cpu, cpu:N"):
        parse_devices(text)


@pytest.mark.slow
def test_train_mirrors_over_cpu_devices_in_a_fresh_process(tmp_path):
    out = run_cli("train", "--preset", "smoke", *SMALL, "--set",
                  "train.scale_learning_rate=true", "--devices", "cpu:2",
                  "--workdir", str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    runtime = json.loads((tmp_path / "config.json").read_text())["runtime"]
    assert runtime["strategy"] == "MirroredStrategy"
    assert [d.rsplit("/", 1)[-1] for d in runtime["devices"]] == [
        "device:CPU:0", "device:CPU:1"]
    assert runtime["replicas"] == 2
    assert (runtime["per_replica_batch_size"],
            runtime["global_batch_size"]) == (32, 64)
    config = json.loads((tmp_path / "config.json").read_text())["config"]
    assert runtime["learning_rate"] == pytest.approx(
        2 * config["train"]["learning_rate"])
    assert (tmp_path / "model.keras").is_file()


def test_gpus_asked_for_without_gpus_is_an_error(tmp_path, capsys):
    from launch.cli import main

    code = main(["train", "--preset", "smoke", "--devices", "gpu:all",
                 "--workdir", str(tmp_path / "w")])
    assert code == 2
    assert "--devices gpu:all: no GPU is visible" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_variables_are_mirrored_across_replicas():
    import tensorflow as tf

    from models.builder import build_model
    from models.config import ModelConfig

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build_model(ModelConfig(units=4, num_layers=1),
                            vocab_size=20, num_classes=2)
    for weight in model.trainable_weights:
        values = weight.value.values  # one copy per replica
        assert len(values) == 2
        assert values[0].device != values[1].device


def _tune(args, workdir, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "launch", "tune", "--preset", "smoke",
         "--set", "data.max_examples=300", "--space", "tiny", *args,
         "--workdir", str(workdir)], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, **kwargs)


def _worker_pids(workdir, tuner_id):
    out = subprocess.run(["pgrep", "-f", f"_work_in_this_process.*{workdir}.*"
                          f'"tuner_id": "{tuner_id}"'], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.slow
def test_keras_tuner_chief_and_two_workers_survive_a_dead_worker(
        tmp_path, tensorboard):
    """Chief plus two workers as processes; one worker is killed mid-trial:
    it is restarted, its trial continues, no trial runs twice."""
    workdir = tmp_path / "study"
    process = _tune(["--backend", "keras-tuner", "--algorithm", "random",
                     "--max-trials", "4", "--max-epochs", "8",
                     "--concurrent-trials", "2", "--devices", "cpu:2",
                     "--set", "train.early_stopping_patience=0"], workdir)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout),
                              daemon=True)
    reader.start()
    # Worker 0's own trial, past its second epoch: on a loaded machine the
    # other worker may be epochs ahead while worker 0 still starts up.
    second_epoch = re.compile(r"\[worker 0\]\s+\[trial \d+\] epoch "
                              r"([2-7])/8 ")
    try:
        wait_until(lambda: any(second_epoch.search(x) for x in lines[:])
                   or process.poll() is not None, timeout=300, interval=0.1,
                   what="worker 0's second epoch")
        assert process.poll() is None, "the study ended before the kill"
        (pid,) = _worker_pids(workdir, "worker0")
        os.kill(pid, signal.SIGKILL)
        process.wait(timeout=600)
        reader.join(timeout=60)
        out = "".join(lines)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, out[-3000:]
    assert "Keras Tuner chief at 127.0.0.1:" in out
    assert "[worker 0] died (exit -9); restarting it" in out
    assert re.search(r"\[worker 0\]\s+\[trial \d+\] resuming at epoch", out)
    rows = json.loads((workdir / "trials.json").read_text())
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    for row in rows:  # every trial ran its epochs once each
        history = read_history(workdir / "trials" / row["trial_id"]
                               / "history.csv")
        assert [r["epoch"] for r in history] == list(range(1, 9))
        runtime = json.loads((workdir / "trials" / row["trial_id"]
                              / "config.json").read_text())["runtime"]
        assert runtime["replicas"] == 2
    tuners = {p.stem for p in (workdir / "keras_tuner" / "study").glob(
        "*.json")} - {"oracle"}
    assert {"chief", "worker0", "worker1"} <= tuners
    check_hparams_on_server(tensorboard(workdir), keys=TINY_KEYS,
                            expected={"STATUS_SUCCESS": 4})


@pytest.mark.slow
def test_a_worker_started_by_hand_joins_the_chief(tmp_path):
    """A worker joined by hand still trains when the chief's own worker
    runs out of trials: the chief serves until every trial has ended.

    The order is forced with SIGSTOP / SIGCONT: the hand-started worker
    takes a trial and is paused until the chief's worker has exited.
    """
    workdir = tmp_path / "study"
    process = _tune(["--backend", "keras-tuner", "--algorithm", "random",
                     "--max-trials", "4", "--max-epochs", "4",
                     "--concurrent-trials", "1"], workdir)
    joined = None
    try:
        line = ""
        while "Keras Tuner chief at" not in line:
            line = process.stdout.readline()
            assert line, "the study ended before its chief started"
        address = line.split(" at ")[1].split(";")[0]
        # Keep reading the chief's output while the worker runs, so that a
        # full pipe never blocks it.
        chief_lines = []
        reader = threading.Thread(
            target=lambda: chief_lines.extend(process.stdout), daemon=True)
        reader.start()
        wait_until(lambda: _worker_pids(workdir, "worker0"), timeout=300,
                   interval=0.1, what="worker0")
        (worker0,) = _worker_pids(workdir, "worker0")
        os.kill(worker0, signal.SIGSTOP)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        joined = subprocess.Popen(
            [sys.executable, "-m", "launch", "worker", "--oracle", address,
             "--workdir", str(workdir), "--tuner-id", "by-hand"], cwd=REPO,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        joined_lines = []
        joined_reader = threading.Thread(
            target=lambda: joined_lines.extend(joined.stdout), daemon=True)
        joined_reader.start()
        wait_until(lambda: any("[trial " in x for x in joined_lines),
                   timeout=300, interval=0.1,
                   what="the hand-started worker's first epoch")
        os.kill(joined.pid, signal.SIGSTOP)
        os.kill(worker0, signal.SIGCONT)
        wait_until(lambda: not _worker_pids(workdir, "worker0"),
                   timeout=300, interval=0.1,
                   what="worker0 to run out of trials")
        os.kill(joined.pid, signal.SIGCONT)
        joined.wait(timeout=300)
        process.wait(timeout=300)
        joined_reader.join(timeout=60)
        reader.join(timeout=60)
        joined_out, out = "".join(joined_lines), "".join(chief_lines)
    finally:
        if joined is not None and joined.poll() is None:
            joined.kill()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert joined.returncode == 0, joined_out[-3000:]
    assert process.returncode == 0, out[-3000:]
    rows = json.loads((workdir / "trials.json").read_text())
    assert len(rows) == 4
    assert all(r["status"] in ("completed", "stopped early") for r in rows)
    assert (workdir / "keras_tuner" / "study" / "by-hand.json").exists()


@pytest.mark.slow
def test_ray_study_uses_both_nodes_of_a_two_node_cluster(smoke_config,
                                                         tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from tuning.trial.config import apply_overrides
    from tuning.tune import run_study
    from studies import TINY_SPACE, study_spec

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, connect=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 200_000_000,
        "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=200_000_000)
        cluster.wait_for_nodes()
        spec = study_spec(apply_overrides(smoke_config, {
            "train.early_stopping_patience": 0}), TINY_SPACE,
            backend="ray", algorithm="random", max_trials=4, max_epochs=2)
        run_study(tmp_path, spec, report=lambda _: None)
        nodes = {n["NodeID"][:12] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
        cluster.shutdown()
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert {r["node"] for r in rows} == nodes and len(nodes) == 2


@pytest.mark.slow
def test_ray_study_joins_an_existing_head_by_address(tmp_path):
    # A short temp dir: Ray's socket paths must fit in 107 characters.
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = dict(os.environ, RAY_TMP=ray_tmp,
               RAY_BIN=os.path.join(os.path.dirname(sys.executable), "ray"))
    address = subprocess.run(["bash", str(REPO / "ci" / "ray-up.sh")],
                             env=env, capture_output=True, text=True,
                             check=True, timeout=120).stdout.strip()
    try:
        process = _tune(["--backend", "ray", "--algorithm", "random",
                         "--max-trials", "2", "--max-epochs", "2",
                         "--ray-address", address], tmp_path / "study")
        out, _ = process.communicate(timeout=600)
    finally:
        subprocess.run(["bash", str(REPO / "ci" / "ray-down.sh")], env=env,
                       timeout=120)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert process.returncode == 0, out[-3000:]
    rows = json.loads((tmp_path / "study" / "trials.json").read_text())
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    assert f"joined the Ray cluster at {address} (1 node(s), 2 CPUs)" in out
