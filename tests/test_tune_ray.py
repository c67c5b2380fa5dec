"""Ray Tune backend, its own parts: the space as Ray sees it and what a
resumed study hands its trials.

The studies both backends run alike (every algorithm, failed trials,
kill -9 and resume) are in `test_tune_backends.py`; what a Ray study
prints and how it resumes finished trials, in `test_ray_resume.py`.
"""

import math

import pytest
from studies import TINY_SPACE, study_spec

from tuning.backends import ray_space, ray_tune
from tuning.study.results import ResultsTable
from tuning.trial.config import ConfigError

# The tiny space without its float dimension: a grid of choices.
GRID_SPACE = {k: v for k, v in TINY_SPACE.items()
              if k != "train.learning_rate"}


@pytest.fixture(scope="module")
def spec(smoke_config):
    return study_spec(smoke_config, GRID_SPACE, backend="ray",
                      algorithm="grid", max_trials=20)


def test_grid_points_respect_conditions(spec):
    points = ray_space.grid_points(spec)
    # gru: 2 unit counts; lstm: 2 unit counts, each way bidirectional.
    assert len(points) == 2 + 2 * 2
    assert all(("model.bidirectional" in p) == (p["model.cell"] == "lstm")
               for p in points)
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)


def test_pbt_needs_a_training_dimension(smoke_config):
    spec = study_spec(smoke_config, {"model.units": {"choice": [4, 8]}},
                      backend="ray", algorithm="pbt", max_trials=2)
    with pytest.raises(ConfigError, match="pbt mutates training keys"):
        ray_space.search(spec)


def test_a_resumed_study_hands_its_trials_their_ended_results(spec,
                                                              tmp_path):
    table = ResultsTable(tmp_path, spec.space)
    table.update("a", status="completed", epochs_run=3, best_objective=0.7,
                 best_epoch=2)
    table.update("b", status="stopped early", epochs_run=1,
                 best_objective=0.6, best_epoch=1)
    table.update("c", status="failed")
    table.update("d", status="running", epochs_run=1, best_objective=0.5)
    ended = ray_tune.ended_results(table, "val_accuracy")
    assert sorted(ended) == ["a", "b", "c"]
    assert ended["a"] == {"epoch": 3, "best_objective": 0.7,
                          "best_epoch": 2, "val_accuracy": 0.7}
    assert math.isnan(ended["c"]["val_accuracy"])


def test_a_trial_no_local_node_can_hold_is_refused(tmp_path):
    """Ray would wait for a GPU node forever; a local Ray never gets one."""
    from commands import run_cli

    out = run_cli("tune", "--preset", "smoke", "--space", "tiny",
                  "--backend", "ray", "--algorithm", "random",
                  "--max-trials", "1", "--gpus-per-trial", "1",
                  "--workdir", str(tmp_path / "study"), timeout=180)
    assert out.returncode == 2, (out.stdout + out.stderr)[-2000:]
    assert out.stderr.strip().splitlines()[-1].endswith(
        "--gpus-per-trial 1: no node of the Ray cluster has 1 GPU(s) (the "
        "largest has 0); ask for at most 0, or leave --gpus-per-trial out "
        "to train on CPUs")
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_concurrent_trials_caps_a_random_search(tmp_path):
    """Ray ignores `max_concurrent_trials` for its variant generator (the
    searcher of random, grid and the schedulers' searches)."""
    import json

    from commands import run_cli

    out = run_cli("tune", "--preset", "smoke", "--space", "tiny",
                  "--backend", "ray", "--algorithm", "hyperband",
                  "--max-trials", "2", "--max-epochs", "2",
                  "--concurrent-trials", "1", "--workdir",
                  str(tmp_path / "study"), timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "will be ignored" not in out.stdout + out.stderr
    first, second = sorted(
        json.loads((tmp_path / "study" / "trials.json").read_text()),
        key=lambda row: row["started_at"])
    assert second["started_at"] >= first["ended_at"]
