"""Cluster submission: rendered scripts (golden files, quoting, errors),
the KubeRay manifest, and the scripts run on a real SLURM."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

from launch.cli import main
from launch.k8s import RayJobSpec, render as render_manifest
from launch.slurm import SlurmSpec, render
from tuning.trial.history import read_history

from polling import wait_until

GOLDEN = pathlib.Path(__file__).parent / "golden"
STUDY = ("--preset", "imdb", "--space", "cells", "--max-trials", "20",
         "--max-epochs", "8")
SPECS = {
    "single": SlurmSpec(
        mode="single", workdir="/scratch/studies/imdb",
        python="/opt/rnntune/bin/python", tune_args=(
            *STUDY, "--backend", "keras-tuner", "--algorithm", "hyperband",
            "--gpus-per-trial", "1"),
        gpus_per_node=4, mem="64G", time="1-00:00:00", partition="gpu",
        account="ml"),
    "keras_tuner": SlurmSpec(
        mode="keras-tuner", workdir="/scratch/studies/imdb",
        python="/opt/rnntune/bin/python", tune_args=(
            *STUDY, "--backend", "keras-tuner", "--algorithm", "random"),
        nodes=2, gpus_per_node=4, gpus_per_trial=2, mem="64G",
        time="12:00:00", partition="gpu",
        extra_sbatch=(("qos", "high"), ("constraint", "a100"))),
    "ray": SlurmSpec(
        mode="ray", workdir="/scratch/studies/imdb",
        python="/opt/rnntune/bin/python", tune_args=(
            *STUDY, "--backend", "ray", "--algorithm", "asha",
            "--gpus-per-trial", "1"),
        nodes=3, gpus_per_node=2, mem="64G", time="08:00:00"),
}


def _golden(name: str, text: str):
    path = GOLDEN / name
    if os.environ.get("RNNTUNE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_rendered_scripts_match_golden_files(name):
    text = render(SPECS[name])
    _golden(f"slurm_{name}.sh", text)
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_rayjob_manifest_matches_golden_and_has_kuberay_fields():
    spec = RayJobSpec(name="imdb-study", image="registry.local/rnntune:1",
                      tune_args=(*STUDY, "--backend", "ray", "--algorithm",
                                 "asha"), workers=2, gpus_per_worker=4,
                      volume_claim="studies")
    text = render_manifest(spec)
    _golden("rayjob.json", text)
    job = json.loads(text)
    assert yaml.safe_load(text) == job  # what YAML readers see too
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["metadata"]["name"] == "imdb-study"
    assert "--ray-address auto" in job["spec"]["entrypoint"]
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    assert "rayStartParams" in head
    assert head["template"]["spec"]["containers"][0]["image"] == (
        "registry.local/rnntune:1")
    (group,) = cluster["workerGroupSpecs"]
    assert group["groupName"] and group["replicas"] == 2
    assert "rayStartParams" in group
    limits = group["template"]["spec"]["containers"][0]["resources"][
        "limits"]
    assert limits["nvidia.com/gpu"] == "4"


AWKWARD = ["x; rm -rf ~", "$(reboot)", "`reboot`", "a'b\"c", "sp ace"]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_stay_inert(value, tmp_path):
    """Paths and names with shell syntax reach the program as given."""
    stub = tmp_path / "python"
    stub.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" > "
                    f"{tmp_path / 'argv'}\n")
    stub.chmod(0o755)
    workdir = tmp_path / f"w {value}"
    spec = SlurmSpec(mode="single", workdir=str(workdir), python=str(stub),
                     tune_args=("--set", f"data.path={value}"),
                     job_name=value, partition=value)
    script = render(spec)
    assert f"#SBATCH --job-name={value}" not in script or value.isalnum()
    env = dict(os.environ, SLURM_JOB_ID="7", HOME=str(tmp_path / "home"))
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["-m", "launch", "tune", "--set", f"data.path={value}",
                    "--workdir", str(workdir)]
    assert (workdir / "slurm").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["python", "argv", workdir.name])  # nothing else was touched


def _submit(*args, capsys):
    code = main(["submit", *args])
    out, err = capsys.readouterr()
    return code, out, err


STUDY_ARGS = ["--preset", "smoke", "--space", "tiny", "--backend",
              "keras-tuner", "--algorithm", "random", "--max-trials", "2"]


@pytest.mark.parametrize("extra, expected", [
    (["--gpus-per-node", "-1"], "--gpus-per-node -1: expected an integer"),
    (["--time", "ten minutes"], "--time 'ten minutes': expected MM"),
    (["--time", "25:99"], "--time '25:99': expected MM"),
    (["--time", "01:00:00", "--signal-seconds", "7200"],
     "--signal-seconds 7200: expected fewer seconds than the time limit, "
     "--time 01:00:00 (3600 s)"),
    (["--mem", "lots"], "--mem 'lots': expected a size"),
    (["--nodes", "2"], "--nodes 2: expected 1 in single mode"),
    (["--extra-sbatch", "qos"], "--extra-sbatch 'qos': expected KEY=VALUE"),
    (["--extra-sbatch", "Bad Key=1"], "expected an sbatch option name"),
    (["--job-name", "a\nb"], "expected a non-empty value on one line"),
])
def test_invalid_slurm_options_are_one_line_errors(extra, expected, tmp_path,
                                                   capsys):
    code, _, err = _submit("slurm", "--mode", "single", *STUDY_ARGS, *extra,
                           "--dry-run", "--workdir", str(tmp_path / "w"),
                           capsys=capsys)
    assert code == 2 and expected in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists()


def test_mode_must_match_the_backend(tmp_path, capsys):
    code, _, err = _submit("slurm", "--mode", "ray", *STUDY_ARGS,
                           "--dry-run", "--workdir", str(tmp_path / "w"),
                           capsys=capsys)
    assert code == 2 and "--mode ray runs a ray study" in err
    code, _, err = _submit("k8s", *STUDY_ARGS, "--name", "x", "--image",
                           "i", "--dry-run", capsys=capsys)
    assert code == 2 and "a RayJob runs a ray study" in err


def test_a_rayjob_gives_each_trial_a_gpu_and_refuses_local_paths(capsys):
    ray = ["--preset", "smoke", "--space", "tiny", "--backend", "ray",
           "--algorithm", "asha", "--max-trials", "4", "--name", "x",
           "--image", "i", "--dry-run", "--workers", "2",
           "--gpus-per-worker", "4"]
    code, out, err = _submit("k8s", *ray, capsys=capsys)
    assert code == 0, err
    entrypoint = json.loads(out)["spec"]["entrypoint"]
    assert "--gpus-per-trial 1 " in entrypoint
    code, out, err = _submit("k8s", *ray, "--gpus-per-trial", "2",
                             capsys=capsys)
    assert code == 0 and "--gpus-per-trial 2.0 " in json.loads(out)["spec"][
        "entrypoint"]
    for extra, expected in (
            (["--gpus-per-trial", "8"], "--gpus-per-trial 8: more than a "
             "worker pod's --gpus-per-worker 4"),
            (["--set", "data.source=csv", "--set", "data.path=my.csv"],
             "--set data.path=my.csv: the pods read it; give its absolute "
             "path inside the containers")):
        code, _, err = _submit("k8s", *ray, *extra, capsys=capsys)
        assert code == 2 and expected in err, err


def test_dry_run_prints_and_writes_the_script(tmp_path, capsys):
    code, out, _ = _submit("slurm", "--mode", "single", *STUDY_ARGS,
                           "--time", "30:00", "--dry-run", "--workdir",
                           str(tmp_path / "w"), capsys=capsys)
    assert code == 0
    written = (tmp_path / "w" / "slurm" / "rnntune.sbatch").read_text()
    assert out == written
    assert "#SBATCH --time=30:00" in out
    assert ("-m launch tune --preset smoke --space tiny --backend "
            "keras-tuner --algorithm random --max-trials 2 --workdir") in out


# --- a real SLURM: CI starts one with ci/slurm-up.sh ---------------------

needs_slurm = pytest.mark.skipif(
    not (shutil.which("sbatch") and os.environ.get("SLURM_CONF"))
    and not os.environ.get("CI"),
    reason="no SLURM cluster (run ci/slurm-up.sh and export SLURM_CONF)")

SMALL = ["--preset", "smoke", "--set", "data.max_examples=300", "--space",
         "tiny", "--max-epochs", "2"]
RESOURCES = ["--cpus", "2", "--mem", "4000M", "--time", "15:00"]


def _submitted(out: str) -> str:
    return out.split("submitted job ")[1].split(":")[0]


def _state(job: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job],
                         capture_output=True, text=True).stdout
    return out.split("JobState=")[1].split()[0] if "JobState=" in out else ""


def _wait(job: str, timeout: float = 420) -> str:
    states = []

    def ended():
        states.append(_state(job))
        return states[-1] in ("COMPLETED", "FAILED", "CANCELLED",
                              "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")

    try:
        wait_until(ended, timeout=timeout, interval=1,
                   what=f"job {job} to finish")
    except AssertionError as e:
        subprocess.run(["scancel", job])
        raise AssertionError(f"{e}; last state {states[-1]}") from None
    return states[-1]


def _check_study(workdir, trials: int, epochs: int):
    rows = json.loads((workdir / "trials.json").read_text())
    assert len(rows) == trials
    assert all(r["status"] in ("completed", "stopped early") for r in rows)
    for row in rows:
        trial = workdir / "trials" / row["trial_id"]
        assert (trial / "logs" / "train").is_dir()
        assert list((trial / "logs" / "validation").glob("events.out.*"))
        assert len(read_history(trial / "history.csv")) <= epochs
    assert (workdir / "best" / "model.keras").is_file()


@needs_slurm
@pytest.mark.slow
@pytest.mark.parametrize("mode, backend, extra", [
    ("single", "keras-tuner", []),
    ("keras-tuner", "keras-tuner", ["--workers-per-node", "2",
                                    "--head-address", "127.0.0.1"]),
    ("ray", "ray", ["--head-address", "127.0.0.1"]),
])
def test_each_mode_runs_a_study_on_slurm(mode, backend, extra, tmp_path,
                                         capsys):
    workdir = tmp_path / "study"
    code, out, err = _submit(
        "slurm", "--mode", mode, *SMALL, "--backend", backend, "--algorithm",
        "random", "--max-trials", "3", *RESOURCES, *extra, "--workdir",
        str(workdir), capsys=capsys)
    assert code == 0, err
    job = _submitted(out)
    assert f"squeue -j {job}" in out
    state = _wait(job)
    log = (workdir / "slurm" / f"rnntune-{job}.out").read_text()
    assert state == "COMPLETED", log[-3000:]
    assert f"rnntune: job {job} on" in log
    _check_study(workdir, trials=3, epochs=2)
    if mode == "keras-tuner":
        tuners = {p.stem for p in (workdir / "keras_tuner" / "study").glob(
            "worker-*.json")}
        assert tuners == {"worker-0-0", "worker-0-1"}  # srun's two tasks


@needs_slurm
@pytest.mark.slow
def test_a_signalled_job_requeues_and_resumes_its_study(tmp_path, capsys):
    workdir = tmp_path / "study"
    code, out, err = _submit(
        "slurm", "--mode", "single", *SMALL, "--set",
        "train.early_stopping_patience=0", "--max-epochs", "20",
        "--backend", "keras-tuner", "--algorithm", "random",
        "--max-trials", "2", *RESOURCES, "--workdir", str(workdir),
        capsys=capsys)
    assert code == 0, err
    job = _submitted(out)
    history = workdir / "trials" / "0" / "history.csv"

    def three_epochs():
        if len(read_history(history)) >= 3:
            return True
        assert _state(job) in ("PENDING", "RUNNING", ""), _state(job)
        return False

    wait_until(three_epochs, timeout=300, interval=0.2,
               what=f"job {job}'s first trial to finish 3 epochs")
    # What the scheduler sends before a time limit or preemption.
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    wait_until(lambda: "Restarts=1" in subprocess.run(
        ["scontrol", "show", "job", job], capture_output=True,
        text=True).stdout, timeout=60, what=f"job {job} to requeue")
    # SLURM holds a requeued job for the credential lifetime before it
    # starts it again (ci/slurm-up.sh shortens it from 120 s to 10 s).
    # Releasing it earlier races the revoked credential of the first run.
    assert _wait(job) == "COMPLETED"
    log = (workdir / "slurm" / f"rnntune-{job}.out").read_text()
    assert "rnntune: signal received, stopping the study and requeueing" \
        in log
    assert f"rnntune: job {job} on localhost, restart 1" in log
    assert "[trial 0] resuming at epoch" in log
    rows = json.loads((workdir / "trials.json").read_text())
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    for row in rows:
        epochs = [r["epoch"] for r in read_history(
            workdir / "trials" / row["trial_id"] / "history.csv")]
        assert epochs == list(range(1, 21))
