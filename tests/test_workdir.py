"""One writer per workdir, one kind of job per workdir, studies resumed
only from private directories, and results tables rebuilt when broken."""

import grp
import json
import os
import signal
import subprocess
import sys

import pytest

from launch.cli import main
from tuning.trial.config import WorkdirError, apply_overrides
from tuning.study.results import ResultsTable
from tuning.tune import run_study
from tuning.trial.workdir import LOCK_FILE, lock_workdir

from commands import REPO, SMALL, run_cli
from stand_in import fake_trial
from studies import TINY_SPACE, study_spec


def _error(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    return err


def test_a_second_train_on_a_held_workdir_is_refused(tmp_path):
    workdir = tmp_path / "run"
    with lock_workdir(workdir, kind="run"):
        out = run_cli("train", "--preset", "smoke", *SMALL,
                      "--workdir", str(workdir))
        assert sorted(p.name for p in workdir.iterdir()) == [LOCK_FILE]
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == (
        f"rnntune: error: {workdir} is in use by process {os.getpid()}; "
        "wait for it to end or choose another --workdir")
    assert not workdir.exists()  # the holder made it and left it empty


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    workdir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from tuning.trial.workdir import lock_workdir\n"
         f"with lock_workdir({str(workdir)!r}, kind='run'):\n"
         "    print('held', flush=True); time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkdirError, match=f"process {holder.pid};"):
            with lock_workdir(workdir, kind="run"):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    finally:
        if holder.poll() is None:
            holder.kill()
    with lock_workdir(workdir, kind="run"):  # the OS released it
        assert (workdir / LOCK_FILE).read_text().split() == [
            str(os.getpid())]


def test_two_identical_studies_and_each_compare_cell(tmp_path, capsys):
    study = tmp_path / "study"
    argv = ["tune", "--preset", "smoke", "--space", "tiny", "--backend",
            "keras-tuner", "--algorithm", "random", "--max-trials", "2",
            "--workdir", str(study)]
    with lock_workdir(study, kind="study"):
        err = _error(capsys, *argv)
    assert f"{study} is in use by process {os.getpid()}" in err
    assert not study.exists()  # refused, it wrote nothing
    cmp = tmp_path / "cmp"
    with lock_workdir(cmp / "gru", kind="run"):
        err = _error(capsys, "compare", "--preset", "smoke", *SMALL,
                     "--cells", "gru", "--workdir", str(cmp))
    assert f"{cmp / 'gru'} is in use by process {os.getpid()}" in err


def test_train_and_tune_refuse_each_others_workdirs(tmp_path, capsys):
    study, run = tmp_path / "study", tmp_path / "run"
    study.mkdir()
    (study / "study.json").write_text("{}")
    run.mkdir()
    (run / "config.json").write_text("{}")
    err = _error(capsys, "train", "--preset", "smoke", "--workdir",
                 str(study))
    assert f"{study} holds a study (study.json, written by rnntune tune), " \
           "not a run" in err
    err = _error(capsys, "tune", "--preset", "smoke", "--space", "tiny",
                 "--backend", "ray", "--algorithm", "random",
                 "--max-trials", "2", "--workdir", str(run))
    assert f"{run} holds a run (config.json, written by rnntune train), " \
           "not a study" in err
    err = _error(capsys, "compare", "--preset", "smoke", "--workdir",
                 str(study))
    assert "holds a study" in err


@pytest.fixture(scope="module")
def finished_study(smoke_config, tmp_path_factory):
    """A finished 3-trial Keras Tuner study (of the stand-in trial
    function), copied fresh by each test."""
    workdir = tmp_path_factory.mktemp("study") / "study"
    spec = study_spec(apply_overrides(smoke_config, {"train.epochs": 1}),
                      TINY_SPACE, backend="keras-tuner", algorithm="random",
                      max_trials=3, max_epochs=1)
    run_study(workdir, spec, report=lambda _: None,
              trial_function=fake_trial)
    return workdir, spec


@pytest.fixture
def study_copy(finished_study, tmp_path):
    import shutil

    source, spec = finished_study
    workdir = tmp_path / "study"
    shutil.copytree(source, workdir)
    return workdir, spec


def _mtimes(workdir):
    return {p: p.stat().st_mtime_ns
            for p in (workdir / "trials").glob("*/history.csv")}


@pytest.mark.parametrize("broken", ["trials.json", "both tables",
                                    "every table", "oracle.json"])
def test_resume_rebuilds_broken_records_and_reruns_nothing(study_copy,
                                                           broken):
    workdir, spec = study_copy
    rows = json.loads((workdir / "trials.json").read_text())
    before = _mtimes(workdir)
    oracle = workdir / "keras_tuner" / "study" / "oracle.json"
    if broken == "oracle.json":
        oracle.write_text(oracle.read_text()[:40])
    else:
        text = (workdir / "trials.json").read_text()
        (workdir / "trials.json").write_text(text[:len(text) // 2])
    if broken in ("both tables", "every table"):
        (workdir / "trials.csv").unlink()
    if broken == "every table":  # the trial's own copies too
        for path in (workdir / "trials").glob("*/row.json"):
            path.unlink()
    best = run_study(workdir, None, resume=True, report=lambda _: None,
                     trial_function=fake_trial)
    rebuilt = json.loads((workdir / "trials.json").read_text())
    keep = ("trial_id", "status", "best_objective", "best_epoch",
            *spec.space.keys)
    assert [{k: r.get(k) for k in keep} for r in rebuilt] == [
        {k: r.get(k) for k in keep} for r in rows]
    assert _mtimes(workdir) == before  # no trial trained again
    assert best["trial_id"] == max(
        rows, key=lambda r: r["best_objective"])["trial_id"]
    json.loads(oracle.read_text())  # whole again


def test_the_table_reads_back_from_its_csv(study_copy):
    workdir, spec = study_copy
    rows = json.loads((workdir / "trials.json").read_text())
    (workdir / "trials.json").unlink()
    table = ResultsTable(workdir, spec.space)
    assert sorted(table.rows.values(), key=lambda r: r["trial_id"]) == [
        {k: v for k, v in r.items() if v not in ("", None)} for r in rows]


def _shared_group() -> int:
    """A group that is not the user's own private one and that this user
    may hand a file to."""
    mine = set(os.getgroups())
    for name in ("users", "nogroup", "staff", "daemon"):
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            continue
        if os.geteuid() == 0 or gid in mine:
            return gid
    pytest.skip("no shared group to hand the study to")


def test_resume_refuses_a_study_others_can_write(study_copy, capsys):
    workdir, _ = study_copy
    argv = ["tune", "--resume", "--workdir", str(workdir)]
    os.chown(workdir, -1, _shared_group())
    os.chmod(workdir, 0o775)
    err = _error(capsys, *argv)
    assert f"{workdir}: writable by its group (mode 0775); resuming loads" \
           in err and "--trust-study-dir" in err
    os.chmod(workdir, 0o755)
    oracle = workdir / "keras_tuner" / "study" / "oracle.json"
    os.chmod(oracle, 0o646)
    err = _error(capsys, *argv)
    assert f"{oracle}: writable by others (mode 0646)" in err
    assert main([*argv, "--trust-study-dir"]) == 0
    os.chmod(oracle, 0o644)
    assert main(argv) == 0
    if os.geteuid() == 0:  # a study another user owns
        os.chown(workdir / "study.json", 65534, -1)
        err = _error(capsys, *argv)
        assert "study.json: owned by" in err and "not you" in err
