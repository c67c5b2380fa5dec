"""Top-k confirmation with both backends, on resume."""

import json
import statistics

import cloudpickle
import pytest

import stand_in
from tuning.study.confirm import top_trials
from tuning.study.results import ResultsTable
from tuning.trial.config import apply_overrides
from tuning.tune import run_study

from stand_in import fake_trial
from studies import TINY_SPACE, study_spec, trial_rows

cloudpickle.register_pickle_by_value(stand_in)  # for Ray's workers


@pytest.fixture(scope="module")
def base(smoke_config):
    return apply_overrides(smoke_config, {"train.epochs": 2,
                                          "train.early_stopping_patience": 0})


@pytest.fixture
def ray_cluster():
    import ray

    from tuning.backends import ray_tune

    ray_tune._connect(None, num_cpus=2)
    yield
    ray.shutdown()


def _check_confirmations(workdir, spec, best, lines):
    rows = trial_rows(workdir)
    table = ResultsTable(workdir, spec.space)
    top = [r["trial_id"] for r in top_trials(table, spec.objective, 2)]
    runs = {tid: r for tid, r in rows.items() if r.get("confirms")}
    assert sorted(runs) == sorted(f"{t}-seed{k}" for t in top
                                  for k in (1, 2))
    means = {}
    for run_id, row in runs.items():
        parent = rows[row["confirms"]]
        assert row["status"] == "confirmed"
        assert row["seed"] == spec.base.train.seed + int(run_id[-1])
        for key in TINY_SPACE:
            assert row.get(key) == parent.get(key)
        trial_dir = workdir / "trials" / run_id
        config = json.loads((trial_dir / "config.json").read_text())
        assert config["config"]["train"]["seed"] == row["seed"]
        assert (trial_dir / "history.csv").is_file()
        assert list((trial_dir / "logs").glob("events.out.tfevents.*"))
        means.setdefault(row["confirms"], []).append(row["best_objective"])
    # The search's trials alone count towards the budget.
    assert sum(1 for r in rows.values() if not r.get("confirms")) == 4
    winner = max(means, key=lambda t: statistics.mean(means[t]))
    assert best["confirmation"]["trial_id"] == winner
    assert best["confirmation"]["mean"] == pytest.approx(
        statistics.mean(means[winner]))
    assert best["confirmation"]["std"] == pytest.approx(
        statistics.stdev(means[winner]))
    assert best["trial_id"] in (winner, f"{winner}-seed1",
                                f"{winner}-seed2")
    assert any(line.startswith(f"trial {winner}: val_accuracy ")
               and " +/- " in line for line in lines)
    tested = [tid for tid, r in rows.items()
              if r.get("test_accuracy") is not None]
    assert tested == [best["trial_id"]]


@pytest.mark.parametrize("backend", [
    "keras-tuner", pytest.param("ray", marks=pytest.mark.slow)])
def test_the_top_trials_are_retrained_with_new_seeds(backend, base,
                                                     tmp_path, request):
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    spec = study_spec(base, TINY_SPACE, backend=backend, algorithm="random",
                      max_trials=4, confirm_top=2, confirm_seeds=2)
    lines = []
    best = run_study(tmp_path, spec, report=lines.append,
                     trial_function=fake_trial)
    assert any("4/4 done" in line for line in lines)
    assert "confirming the top 2 trial(s) with 2 new seed(s) each: 4 " \
        "run(s) to go" in lines
    _check_confirmations(tmp_path, spec, best, lines)


def test_confirmations_added_to_a_finished_study_and_resumed(base,
                                                             tmp_path):
    spec = study_spec(base, TINY_SPACE, backend="keras-tuner",
                      algorithm="random", max_trials=4)
    run_study(tmp_path, spec, report=lambda _: None,
              trial_function=fake_trial)
    searched = trial_rows(tmp_path)
    confirming = study_spec(base, TINY_SPACE, backend="keras-tuner",
                            algorithm="random", max_trials=4,
                            confirm_top=2, confirm_seeds=2)
    lines = []
    best = run_study(tmp_path, confirming, report=lines.append,
                     trial_function=fake_trial)
    assert any("holds this study already" in line for line in lines)
    _check_confirmations(tmp_path, confirming, best, lines)
    rows = trial_rows(tmp_path)
    for trial_id, row in searched.items():  # the search did not run again
        assert rows[trial_id]["ended_at"] == row["ended_at"]
    # Interrupted before its last rerun: only that one runs on resume.
    last = sorted(r for r in rows if r.endswith("-seed2"))[-1]
    (tmp_path / "trials" / last / "metrics.json").unlink()
    ResultsTable(tmp_path, confirming.space).update(last, status="running")
    lines.clear()
    run_study(tmp_path, None, resume=True, report=lines.append,
              trial_function=fake_trial)
    assert "confirming the top 2 trial(s) with 2 new seed(s) each: 1 " \
        "run(s) to go" in lines
    after = trial_rows(tmp_path)
    assert after[last]["status"] == "confirmed"
    for run_id, row in rows.items():
        if run_id != last and row.get("confirms"):
            assert after[run_id]["ended_at"] == row["ended_at"]


def test_bad_confirmation_options_are_refused(base):
    for kwargs, expected in (({"confirm_top": 5}, "--confirm-top 5: "),
                             ({"confirm_top": -1}, "--confirm-top -1: "),
                             ({"confirm_seeds": 0}, "--confirm-seeds 0: ")):
        with pytest.raises(ValueError, match=expected):
            study_spec(base, TINY_SPACE, backend="keras-tuner",
                       algorithm="random", max_trials=4, **kwargs)
