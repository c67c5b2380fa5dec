"""Helpers the test modules share (fixtures live in conftest.py).

`fake_trial` is a trial function for `TrialRunner`'s seam that trains
nothing: it writes what a trial writes (history, training state, metrics,
a model file) from a made-up curve, in milliseconds, honouring resume,
early stopping and the epoch hooks the backends pass. Search,
scheduling, failure and table logic is tested with it; real end-to-end
studies run in the slow tier.
"""

import json
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from data_pipeline.config import DataConfig
from tuning.trial.history import read_history

REPO = pathlib.Path(__file__).resolve().parents[1]
# The smoke preset on fewer texts and epochs, as `--set` arguments (the
# `smoke_config` fixture is the same config).
SMALL = ["--set", "data.max_examples=400", "--set", "train.epochs=2"]


def run_cli(*args: str, stdin: str | None = None, timeout: float = 300,
            cwd: pathlib.Path = REPO, **kwargs) -> subprocess.CompletedProcess:
    """Runs `python -m launch ARGS` in a fresh process, in `cwd`."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "launch", *args], input=stdin,
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
        **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def study_spec(base, space: dict, *, backend: str, algorithm: str,
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


def fake_curve(config, epoch: int) -> dict:
    """A made-up epoch of `config`: validation accuracy rises with the
    units and the learning rate, then falls a little (it overfits), and
    moves a little with the seed; a learning rate of 1 or more diverges (a
    NaN loss)."""
    lr, units = config.train.learning_rate, config.model.units
    if lr >= 1:
        return dict(loss=math.nan, accuracy=0.5, val_loss=math.nan,
                    val_accuracy=0.5)
    ceiling = 0.6 + 0.3 * units / (units + 8) + 0.01 * (
        config.model.cell == "lstm")
    rise = 1 - math.exp(-epoch * min(lr, 0.1) * 300)
    luck = 0.002 * ((config.train.seed * 7919) % 11 - 5)
    val = 0.5 + (ceiling - 0.5) * rise - 0.004 * max(0, epoch - 2) + luck
    train = min(0.99, val + 0.02 * epoch)
    return dict(loss=1 - train, accuracy=train, val_loss=1.2 - val,
                val_accuracy=val)


def fake_trial(config, workdir, *, report, epoch_hooks=(),
               keep_state=False, evaluate_test=True) -> dict:
    """A trial function that trains nothing (see the module docstring)."""
    from data_pipeline.sources import load_splits
    from tuning.trial import verdict
    from tuning.trial.files import write_json
    from tuning.trial.history import write_history
    from tuning.trial.state import (HISTORY, METADATA, WEIGHTS,
                                    TrainingState)
    from tuning.trial.workdir import check_workdir

    workdir = pathlib.Path(workdir)
    finished = check_workdir(workdir, config)
    if finished is not None:
        if evaluate_test and not math.isfinite(
                finished.get("test_accuracy") or math.nan):
            finished["test_accuracy"] = finished["best_val_accuracy"]
            finished["test_loss"] = finished["best_val_loss"]
            write_json(workdir / "metrics.json", finished)
        if not keep_state:
            TrainingState(workdir).discard()
        report(f"{workdir}: already finished, reusing its metrics")
        return finished
    splits = load_splits(config.data)  # a missing data file fails here
    workdir.mkdir(parents=True, exist_ok=True)
    state = TrainingState(workdir)
    done = state.recover()
    if not done:
        state.start_fresh()
    write_json(workdir / "config.json", {"config": config.to_dict(),
                                         "runtime": {"fake": True}})
    (workdir / "labels.txt").write_text(
        "".join(f"{n}\n" for n in splits.class_names))
    rows = read_history(workdir / HISTORY)
    epochs = config.train.epochs
    patience = config.train.early_stopping_patience
    if done:
        report(f"resuming at epoch {done + 1}/{epochs} from the last "
               "finished epoch")
    stopped_early = False
    for epoch in range(done + 1, epochs + 1):
        row = {"epoch": epoch, **fake_curve(config, epoch), "seconds": 0.01,
               "ended_at": time.time()}
        row["accuracy_gap"] = row["accuracy"] - row["val_accuracy"]
        row["loss_gap"] = row["val_loss"] - row["loss"]
        rows = [r for r in rows if r["epoch"] < epoch] + [row]
        write_history(workdir / HISTORY, rows)
        report(f"epoch {epoch}/{epochs}  val_accuracy "
               f"{row['val_accuracy']:.4f}")
        if math.isnan(row["loss"]):
            break  # as TerminateOnNaN
        best = verdict.best_row(rows, config.train.objective)
        stopped_early = bool(patience and epoch - best["epoch"] >= patience)
        with tempfile.TemporaryDirectory(dir=workdir) as staged:
            staged = pathlib.Path(staged)
            (staged / WEIGHTS).write_bytes(b"fake weights")
            (staged / HISTORY).write_text((workdir / HISTORY).read_text())
            (staged / METADATA).write_text(json.dumps({"epoch": epoch}))
            state.seed_from(staged)  # commits the epoch, as training does
        for hook in epoch_hooks:
            hook(epoch, stopped_early or epoch == epochs)
        if stopped_early:
            break
    figures = verdict.analyze(rows, num_classes=len(splits.class_names),
                              objective=config.train.objective)
    top = verdict.best_row(rows, config.train.objective)
    diverged = figures["verdict"] == "diverged"
    metrics = {
        "status": "diverged" if diverged else "completed",
        "objective": config.train.objective,
        "best_objective": top[config.train.objective],
        "best_epoch": top["epoch"], "best_val_accuracy": top["val_accuracy"],
        "best_val_loss": top["val_loss"],
        "accuracy_gap_at_best": top["accuracy_gap"],
        "epochs_run": len(rows), "stopped_early": stopped_early,
        "final_train_accuracy": rows[-1]["accuracy"],
        "final_val_accuracy": rows[-1]["val_accuracy"],
        "final_accuracy_gap": rows[-1]["accuracy_gap"],
        "test_accuracy": (top["val_accuracy"]  # made up, as the rest
                          if evaluate_test and not diverged else math.nan),
        "test_loss": (top["val_loss"] if evaluate_test and not diverged
                      else math.nan),
        "overfit_onset_epoch": figures["overfit_onset_epoch"],
        "gap_slope": figures["gap_slope"], "verdict": figures["verdict"],
        "verdict_reason": figures["verdict_reason"], "wall_seconds": 0.01,
    }
    if not diverged:
        (workdir / "model.keras").write_bytes(b"not a real model")
    write_json(workdir / "metrics.json", metrics)
    if not keep_state:
        state.discard()
    return metrics


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)


def make_class_tree(root, counts: dict[str, int]):
    for name, n in counts.items():
        for i in range(n):
            write(root / name / f"{i}.txt", f"{name} review number {i} "
                  "with words<br />and more words.")
    return root


def bad_data_sources(tmp_path):
    """(description, DataConfig, text expected in the message)."""
    empty = tmp_path / "empty"
    empty.mkdir(parents=True)
    no_files = make_class_tree(tmp_path / "nofiles", {"pos": 2})
    (no_files / "neg").mkdir()
    single = make_class_tree(tmp_path / "single", {"pos": 3})
    latin = make_class_tree(tmp_path / "latin", {"pos": 2, "neg": 2})
    write(latin / "neg" / "bad.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    blank = make_class_tree(tmp_path / "blank", {"pos": 2, "neg": 2})
    write(blank / "pos" / "blank.txt", "  \n")
    csv_path = tmp_path / "cols.csv"
    write(csv_path, "review,label\nhello,1\n")
    one_label = tmp_path / "one.csv"
    write(one_label, "text,label\na,1\nb,1\n")
    as_file = tmp_path / "file.txt"
    write(as_file, "x")
    links = {}
    for kind in ("loop", "dangling", "folder"):
        tree = make_class_tree(tmp_path / kind, {"pos": 2, "neg": 2})
        links[kind] = tree
    (links["loop"] / "pos" / "loop.txt").symlink_to("loop.txt")
    (links["dangling"] / "pos" / "gone.txt").symlink_to(tmp_path / "gone")
    (links["folder"] / "pos" / "notes.txt").mkdir()
    nan_label = tmp_path / "nan.csv"
    write(nan_label, 'text,label\n"a\nlong one",1\nb,NaN\nc,0\n')
    twice = tmp_path / "twice.csv"
    write(twice, "text,label,text\na,1,x\nb,0,y\n")
    joined = tmp_path / "joined.csv"
    write(joined, "text,label\na,1\nb,0\ntext,label\nc,1\n")
    latin_csv = tmp_path / "latin.csv"
    write(latin_csv, "text,label\nfine,1\ncaf\xe9,0\n".encode("latin-1"))
    return [
        ("symlink loop", DataConfig(source="directory",
                                    path=str(links["loop"])),
         "loop.txt: cannot be read: a symbolic link loop"),
        ("dangling link", DataConfig(source="directory",
                                     path=str(links["dangling"])),
         "gone.txt: cannot be read: a dangling symbolic link"),
        ("folder named .txt", DataConfig(source="directory",
                                         path=str(links["folder"])),
         "notes.txt: cannot be read: a directory, not a text file"),
        ("csv NaN label", DataConfig(source="csv", path=str(nan_label)),
         "nan.csv, line 4: missing label ('NaN') in column 'label'"),
        ("csv column twice", DataConfig(source="csv", path=str(twice)),
         "twice.csv, line 1: the header names column 'text' twice"),
        ("csv header again", DataConfig(source="csv", path=str(joined)),
         "joined.csv, line 4: repeats the header"),
        ("csv not utf-8", DataConfig(source="csv", path=str(latin_csv)),
         "latin.csv, line 3: not UTF-8 text"),
        ("csv on a directory", DataConfig(source="csv",
                                          path=str(links["loop"])),
         "a directory, not a CSV file; use data.source=directory"),
        ("missing", DataConfig(source="directory",
                               path=str(tmp_path / "nope")),
         "nope: no such directory"),
        ("empty", DataConfig(source="directory", path=str(empty)),
         "empty: no class folders"),
        ("no files", DataConfig(source="directory", path=str(no_files)),
         "neg: class folder has no .txt files"),
        ("single class", DataConfig(source="directory", path=str(single)),
         "only one class folder (pos)"),
        ("not utf-8", DataConfig(source="directory", path=str(latin)),
         "bad.txt: not UTF-8 text"),
        ("empty text", DataConfig(source="directory", path=str(blank)),
         "blank.txt: empty text"),
        ("csv columns", DataConfig(source="csv", path=str(csv_path)),
         "no column 'text'; columns are 'review', 'label'"),
        ("csv one label", DataConfig(source="csv", path=str(one_label)),
         "has 1 distinct label(s)"),
        ("csv missing", DataConfig(source="csv",
                                   path=str(tmp_path / "no.csv")),
         "no.csv: no such file"),
        ("file as dir", DataConfig(source="directory", path=str(as_file)),
         "not a directory"),
    ]


def post(port, path, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


SESSION_GROUPS = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS",
                        "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [], "startIndex": 0, "sliceSize": 1000,
}


def session_hparams(group) -> dict:
    """A session group's hyperparameter values, as plain Python."""
    return dict(group["hparams"])


def check_hparams_on_server(workdir, *, keys, expected):
    """Starts TensorBoard on `workdir` and checks the HParams dashboard:
    every key in the experiment, one session per trial with its status
    (`expected`: status -> count), and every metric present."""
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(workdir),
         "--host", "127.0.0.1", "--port", str(port),
         "--reload_interval", "1"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        groups = []
        while time.monotonic() < deadline:
            try:
                groups = post(port, "/data/plugin/hparams/session_groups",
                              SESSION_GROUPS)["sessionGroups"]
                if len(groups) == sum(expected.values()):
                    break
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        experiment = post(port, "/data/plugin/hparams/experiment",
                          {"experimentName": ""})
        names = [h["name"] for h in experiment["hparamInfos"]]
        assert set(names) == {*keys, "cudnn"}  # cudnn: derived, per trial
        metric_tags = {(m["name"]["group"], m["name"]["tag"])
                       for m in experiment["metricInfos"]}
        assert ("validation", "epoch_accuracy") in metric_tags
        assert ("", "best_objective") in metric_tags
        statuses = {}
        for group in groups:
            (session,) = group["sessions"]
            statuses[session["status"]] = statuses.get(
                session["status"], 0) + 1
            values = {(m["name"]["group"], m["name"]["tag"])
                      for m in session["metricValues"]}
            assert ("", "best_objective") in values
            assert ("", "failed") in values
            assert isinstance(session_hparams(group).get("cudnn"), bool)
        assert statuses == expected
        return groups
    finally:
        process.terminate()
        process.wait(timeout=30)


def failure_space(csv_path, tmp_path):
    return {
        "train.learning_rate": {"choice": [1e30, 0.01]},
        "data.path": {"choice": [str(csv_path), str(tmp_path / "gone.csv")]},
    }


def trial_rows(workdir) -> dict[str, dict]:
    """A study's results table (`trials.json`), by trial id."""
    return {r["trial_id"]: r for r in json.loads(
        (pathlib.Path(workdir) / "trials.json").read_text())}


def history_epochs(workdir):
    return {d.name: [r["epoch"] for r in read_history(d / "history.csv")]
            for d in sorted((workdir / "trials").iterdir())
            if (d / "history.csv").exists()}


def kill_and_resume(workdir, args, *, victim_trial: int, min_epochs: int,
                    between=lambda: None):
    """Runs `rnntune tune ARGS`, kill -9s its process group once trial
    number `victim_trial` has `min_epochs` epochs, calls `between()`, then
    resumes the study."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "launch", "tune", *args, "--workdir",
         str(workdir)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            epochs = history_epochs(workdir) if (
                workdir / "trials").exists() else {}
            names = sorted(epochs)
            if (len(names) > victim_trial
                    and len(epochs[names[victim_trial]]) >= min_epochs):
                break
            assert process.poll() is None, "the study ended before the kill"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    between()
    before = history_epochs(workdir)
    metrics_before = {d.name: (d / "metrics.json").stat().st_mtime_ns
                      for d in (workdir / "trials").iterdir()
                      if (d / "metrics.json").exists()}
    resumed = subprocess.run(
        [sys.executable, "-m", "launch", "tune", "--resume", "--workdir",
         str(workdir)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return before, metrics_before, resumed.stdout


