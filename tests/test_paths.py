"""Every command takes paths relative to where it is run: workdirs, data,
space files, models, cluster scripts."""

import json
import shutil

import pytest

from commands import SMALL, run_cli

SPACE = {"model.cell": {"choice": ["gru", "lstm"]}}


@pytest.fixture
def here(tmp_path, reviews_csv):
    """A current directory holding a CSV data set and a space file."""
    shutil.copy(reviews_csv, tmp_path / "reviews.csv")
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    (tmp_path / "vectors.txt").write_text("film" + " 0.5" * 16 + "\n")
    return tmp_path


def _data_sets():
    return [*SMALL, "--set", "data.source=csv", "--set",
            "data.path=reviews.csv"]


@pytest.mark.slow
def test_train_and_predict_with_relative_paths(here):
    out = run_cli("train", "--preset", "smoke", *_data_sets(),
                  "--workdir", "my runs/rel", cwd=here)
    assert out.returncode == 0, out.stderr[-3000:]
    # The hint is a shell word, ready to paste.
    assert "model: 'my runs/rel/model.keras'" in out.stdout
    config = json.loads((here / "my runs/rel/config.json").read_text())
    assert config["config"]["data"]["path"] == str(here / "reviews.csv")
    out = run_cli("predict", "--model", "my runs/rel/model.keras",
                  "a fine film", cwd=here)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.endswith("\ta fine film\n")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ray", "keras-tuner"])
def test_each_backend_tunes_and_resumes_with_relative_paths(here, backend):
    argv = ["tune", "--preset", "smoke", *_data_sets(), "--space",
            "space.json", "--backend", backend, "--algorithm", "random",
            "--max-trials", "2", "--max-epochs", "1",
            "--workdir", "runs/study"]
    out = run_cli(*argv, cwd=here, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    # rnntune's lines only: no library chatter, no colour codes, nothing
    # after the last line (the trials' own output stays in Ray's logs).
    for noise in ("(trainable pid", "Checkpoint successfully created",
                  "\x1b[", "To visualize your results", "I0000",
                  "Configuration for experiment"):
        assert noise not in out.stdout + out.stderr, noise
    assert out.stdout.splitlines()[-1].startswith("best: trial ")
    assert "] epoch 1/1  loss " in out.stdout
    rows = json.loads((here / "runs/study/trials.json").read_text())
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    assert (here / "runs/study/best/model.keras").is_file()
    again = run_cli("tune", "--resume", "--workdir", "runs/study", cwd=here,
                    timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert len(json.loads((here / "runs/study/trials.json").read_text())
               ) == 2


def test_submitted_scripts_hold_absolute_paths(here):
    out = run_cli("submit", "slurm", "--mode", "single", "--preset", "smoke",
                  *_data_sets(), "--set",
                  "model.pretrained_embeddings=vectors.txt", "--space",
                  "space.json", "--backend", "keras-tuner", "--algorithm",
                  "random", "--max-trials", "2", "--trust-study-dir",
                  "--workdir", "runs/job", "--dry-run", cwd=here)
    assert out.returncode == 0, out.stderr[-3000:]
    script = (here / "runs/job/slurm/rnntune.sbatch").read_text()
    assert script == out.stdout
    assert f"WORKDIR={here / 'runs/job'}" in script
    assert f"data.path={here / 'reviews.csv'}" in script
    assert f"model.pretrained_embeddings={here / 'vectors.txt'}" in script
    assert f"--space {here / 'space.json'}" in script
    assert "--trust-study-dir" in script  # a requeued job resumes with it
    output = next(line for line in script.splitlines()
                  if line.startswith("#SBATCH --output="))
    assert str(here / "runs/job/slurm") in output
