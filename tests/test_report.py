"""`rnntune report`, the TensorBoard views, and both checked in a browser."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest
import tensorflow as tf

from launch.cli import main
from tuning.reporting.report import build_report
from tuning.trial.config import apply_overrides
from tuning.trial.history import read_history
from tuning.tune import run_study

from commands import REPO
from polling import wait_until
from servers import session_groups
from stand_in import fake_trial
from studies import TINY_SPACE, study_spec

ARTIFACTS = REPO / "artifacts"  # screenshots kept for CI (git-ignored)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
    reason="headless Chromium and chromedriver are not installed")


@pytest.fixture(scope="module")
def study(tmp_path_factory, smoke_config):
    workdir = tmp_path_factory.mktemp("report") / "study"
    base = apply_overrides(smoke_config, {"train.early_stopping_patience": 0})
    spec = study_spec(base, TINY_SPACE, backend="keras-tuner",
                      algorithm="random", max_trials=3, max_epochs=3)
    run_study(workdir, spec, report=lambda _: None)
    return workdir


def test_report_of_a_study(study, capsys):
    assert main(["report", "--workdir", str(study)]) == 0
    out = capsys.readouterr().out
    report = json.loads((study / "report" / "report.json").read_text())
    table = json.loads((study / "trials.json").read_text())
    assert sorted(e["run"] for e in report["runs"]) == sorted(
        f"trials/{r['trial_id']}" for r in table)
    for entry in report["runs"]:
        rows = read_history(study / entry["run"] / "history.csv")
        best = max(rows, key=lambda r: r["val_accuracy"])
        assert entry["best_epoch"] == best["epoch"]
        assert entry["best_val_accuracy"] == pytest.approx(
            best["val_accuracy"], rel=1e-6)  # read from TensorBoard files
        assert entry["final_accuracy_gap"] == pytest.approx(
            rows[-1]["accuracy_gap"], abs=1e-6)
        assert entry["verdict"] in ("overfitting", "underfitting", "healthy")
        assert entry["run"] in out
        assert (study / "report" / ("curves_" + entry["run"].replace(
            "/", "_") + ".png")).is_file()
    assert set(report["groups"]) == set(TINY_SPACE)
    for groups in report["groups"].values():
        assert sum(g["runs"] for g in groups) == 3
    assert "by model.cell:" in out and "first rule that applies" in out
    assert (study / "report" / "gap_vs_hyperparameters.png").is_file()
    assert main(["report", "--workdir", str(study), "--format",
                 "json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "study"


def test_report_of_train_and_compare_workdirs(smoke_run, tmp_path, capsys):
    workdir, metrics = smoke_run
    report = build_report(workdir)
    (entry,) = report["runs"]
    assert report["kind"] == "train" and entry["run"] == workdir.name
    assert entry["verdict"] == metrics.verdict
    assert entry["best_epoch"] == metrics.best_epoch
    code = main(["report", "--workdir", str(tmp_path)])
    assert code == 2 and "no runs found" in capsys.readouterr().err


def test_checkpoints_are_not_runs_and_an_unfinished_run_says_so(
        smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    # A training checkpoint holds a history too (Ray keeps copies of it).
    checkpoint = run / "ray_checkpoint"
    checkpoint.mkdir(exist_ok=True)
    shutil.copy(run / "history.csv", checkpoint)
    (run / "metrics.json").unlink()  # stopped before its end
    (entry,) = build_report(run)["runs"]
    assert entry["run"] == "run" and entry["status"] == "running"
    assert entry["reason"].startswith("unfinished")


def test_a_train_workdir_is_named_after_its_directory(
        smoke_run, tmp_path, monkeypatch, capsys):
    run = tmp_path / "runs" / "gru-small"
    shutil.copytree(smoke_run[0], run)
    for cwd, workdir in ((run, "."), (tmp_path, "runs/gru-small/"),
                         (tmp_path / "runs", "../runs/gru-small")):
        monkeypatch.chdir(cwd)
        assert main(["report", "--workdir", workdir]) == 0, workdir
        out = capsys.readouterr().out
        report = json.loads((run / "report" / "report.json").read_text())
        assert [e["run"] for e in report["runs"]] == ["gru-small"]
        assert report["chosen"]["run"] == "gru-small"
        assert "\ngru-small " in out and "chosen: gru-small," in out
    assert sorted(p.name for p in (run / "report").glob("curves_*.png")) \
        == ["curves_gru-small.png"]


def _write_curves(run, rows):
    """The epochs of `rows` as Keras' TensorBoard callback logs them
    (`logs/train`, `logs/validation`; step = epoch - 1), with a validation
    loss that grows with validation accuracy (over-confident models), so
    that ranking by loss and by accuracy disagree."""
    for name in ("train", "validation"):
        writer = tf.summary.create_file_writer(str(run / "logs" / name))
        with writer.as_default():
            for row in rows:
                loss, accuracy = (
                    (row["loss"], row["accuracy"]) if name == "train" else
                    (0.2 + row["val_accuracy"], row["val_accuracy"]))
                tf.summary.scalar("epoch_loss", loss, step=row["epoch"] - 1)
                tf.summary.scalar("epoch_accuracy", accuracy,
                                  step=row["epoch"] - 1)
        writer.close()


@pytest.fixture(scope="module")
def loss_study(tmp_path_factory, smoke_config):
    """A finished study on `val_loss` of the stand-in trial (no training),
    its curves in TensorBoard files as `_write_curves` makes them."""
    workdir = tmp_path_factory.mktemp("loss_study") / "study"
    base = apply_overrides(smoke_config, {"train.early_stopping_patience": 0})
    spec = study_spec(base, TINY_SPACE, backend="keras-tuner",
                      algorithm="random", max_trials=4, max_epochs=3,
                      objective="val_loss")
    run_study(workdir, spec, report=lambda _: None,
              trial_function=fake_trial)
    for history in sorted(workdir.glob("trials/*/history.csv")):
        _write_curves(history.parent, read_history(history))
    return workdir


def test_a_val_loss_studys_report_ranks_its_runs_by_loss(loss_study,
                                                         capsys):
    assert main(["report", "--workdir", str(loss_study)]) == 0
    out = capsys.readouterr().out
    report = json.loads((loss_study / "report" / "report.json").read_text())
    loss = {e["run"]: min(r["val_loss"] for r in e["curves"])
            for e in report["runs"]}
    accuracy = {e["run"]: max(r["val_accuracy"] for r in e["curves"])
                for e in report["runs"]}
    by_loss = sorted(loss, key=loss.get)
    assert len(by_loss) == 4
    assert by_loss != sorted(accuracy, key=lambda run: -accuracy[run])
    assert [t["run"] for t in report["top"]] == by_loss
    assert report["objective"] == "val_loss"
    assert [t["best_objective"] for t in report["top"]] == pytest.approx(
        sorted(loss.values()), rel=1e-6)
    for entry in report["runs"]:  # each run's best epoch by its loss
        best = min(entry["curves"], key=lambda r: r["val_loss"])
        assert entry["best_epoch"] == best["epoch"]
    # The printed table lists them in that order, with their loss.
    assert "best val loss" in out
    rows = [line.split()[0] for line in out.splitlines()
            if line.startswith("trials/")]
    assert rows[:4] == by_loss


def _statuses(report) -> dict[str, str]:
    return {e["run"]: e["status"] for e in report["runs"]}


def _one_line_error(code, err, expected):
    assert code == 2, err
    assert err.startswith("rnntune: error: ") and expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_report_reads_damaged_study_files_as_resume_does(loss_study,
                                                         tmp_path, capsys):
    study = tmp_path / "study"
    shutil.copytree(loss_study, study)
    intact = build_report(loss_study)
    table = (study / "trials.json").read_text()
    # trials.json cut in half: rebuilt from trials.csv, then from the
    # trial directories (each trial's row.json) without that either.
    for damage in ("trials.json", "trials.csv"):
        (study / "trials.json").write_text(table[:len(table) // 2])
        if damage == "trials.csv":
            (study / "trials.csv").unlink()
        assert main(["report", "--workdir", str(study)]) == 0, damage
        capsys.readouterr()
        report = json.loads((study / "report" / "report.json").read_text())
        assert _statuses(report) == _statuses(intact), damage
        assert report["top"] == intact["top"], damage
        rebuilt = json.loads((study / "trials.json").read_text())
        assert {(r["trial_id"], r["status"]) for r in rebuilt} == {
            (r["trial_id"], r["status"]) for r in json.loads(table)
        }  # written back whole, as resume writes it
    # study.json cannot be rebuilt: one line naming it.
    (study / "study.json").write_text("")
    code = main(["report", "--workdir", str(study)])
    _one_line_error(code, capsys.readouterr().err, "study.json")


def test_tensorboard_shows_curves_gap_layout_and_overfitting_metrics(
        study, tensorboard):
    trials = [r["trial_id"] for r in
              json.loads((study / "trials.json").read_text())]
    server = tensorboard(study)
    groups = session_groups(server, len(trials))
    runs = server.get("/data/runs")
    tags = server.get("/data/plugin/scalars/tags")
    for trial in trials:
        for run in ("train", "validation", "gap"):
            assert f"trials/{trial}/logs/{run}" in runs
        assert "epoch_accuracy_gap" in tags[f"trials/{trial}/logs/gap"]
        assert "epoch_loss" in tags[f"trials/{trial}/logs/validation"]
    layout = server.get("/data/plugin/custom_scalars/layout")
    charts = {c["title"]: c["multiline"]["tag"]
              for cat in layout["category"] for c in cat["chart"]}
    assert charts["loss (train and validation runs)"] == ["^epoch_loss$"]
    assert charts["accuracy gap (train - validation)"] == [
        "^epoch_accuracy_gap$"]
    experiment = server.post("/data/plugin/hparams/experiment",
                             {"experimentName": ""})
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"gap_slope", "overfit_onset_epoch", "overfitting",
            "accuracy_gap_at_best", "final_accuracy_gap"} <= metrics
    for group in groups:
        (session,) = group["sessions"]
        assert session["status"] == "STATUS_SUCCESS"
        values = {m["name"]["tag"]: m["value"]
                  for m in session["metricValues"]}
        assert values["overfitting"] in (0.0, 1.0)
        assert isinstance(values["gap_slope"], float)


def _chromium_args(user_dir):
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={user_dir}",
            "--window-size=1400,900"]


@needs_browser
@pytest.mark.slow
def test_report_page_renders_every_run_in_chromium(study):
    from tuning.reporting.render import write_outputs
    from tuning.reporting.report import build_report

    paths = write_outputs(build_report(study), study)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    with tempfile.TemporaryDirectory() as user_dir:
        dom = subprocess.run(
            [*_chromium_args(user_dir), "--virtual-time-budget=5000",
             "--dump-dom", paths["html"].as_uri()], capture_output=True,
            text=True, timeout=120).stdout
        subprocess.run([*_chromium_args(user_dir),
                        "--virtual-time-budget=5000",
                        f"--screenshot={shot}", paths["html"].as_uri()],
                       capture_output=True, timeout=120)
    trials = [r["trial_id"] for r in
              json.loads((study / "trials.json").read_text())]
    for trial in trials:
        assert f'data-run="trials/{trial}"' in dom
    assert dom.count('<img alt="trials/') == len(trials)
    assert shot.read_bytes()[:4] == b"\x89PNG"


SHADOW_TEXT = """
function collect(node, out) {
  if (node.shadowRoot) collect(node.shadowRoot, out);
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) out.push(child.textContent);
    else collect(child, out);
  }
  return out;
}
return collect(document.body, []).join(' ');
"""


@needs_browser
@pytest.mark.slow
def test_hparams_dashboard_lists_every_trial_in_chromium(study,
                                                        tensorboard):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    trials = json.loads((study / "trials.json").read_text())
    server = tensorboard(study)
    ARTIFACTS.mkdir(exist_ok=True)
    session_groups(server, len(trials))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as user_dir:
        for arg in _chromium_args(user_dir)[1:]:
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER),
                                  options=options)
        try:
            driver.get(f"http://127.0.0.1:{server.port}/?forceSVG=true"
                       "#hparams")

            def every_rate_shown():
                text = driver.execute_script(SHADOW_TEXT)
                return text if all(str(r["train.learning_rate"])[:6] in text
                                   for r in trials) else None

            try:
                text = wait_until(
                    every_rate_shown, timeout=60, interval=1,
                    what="the HParams dashboard to show every trial")
            finally:
                driver.save_screenshot(str(ARTIFACTS / "hparams.png"))
        finally:
            driver.quit()
    for row in trials:  # each trial's sampled learning rate is on the page
        assert str(row["train.learning_rate"])[:6] in text, text[:2000]
    assert "overfitting" in text and "gap_slope" in text
