"""The private Keras Tuner API that `SafeFiles` builds on is still there.

`SafeFiles` overrides and calls private `kt.Oracle` methods of the 1.4
series; a release that renames one or changes its parameters would break
study files quietly (an override never called, a call that raises only on
resume). These tests say which method changed, in which release.
"""

import inspect
import tomllib

import keras_tuner as kt
import pytest
from commands import REPO

from tuning.backends.keras_tuner import (
    KERAS_TUNER_SERIES,
    ORACLE_METHODS,
    ORACLES,
    SafeFiles,
)

WRITTEN_FOR = (f"SafeFiles (tuning/backends/keras_tuner.py) was written for "
               f"keras-tuner {KERAS_TUNER_SERIES}.x; the installed "
               f"keras-tuner is {kt.__version__}")


@pytest.mark.parametrize("name", sorted(ORACLE_METHODS))
def test_oracle_methods_keep_their_signatures(name):
    method = getattr(kt.Oracle, name, None)
    assert method is not None, (
        f"{WRITTEN_FOR}, whose Oracle has no {name}(): check SafeFiles "
        "against it before widening the pin in pyproject.toml")
    found = str(inspect.signature(method))
    assert found == ORACLE_METHODS[name], (
        f"{WRITTEN_FOR}, whose Oracle.{name}{found} differs from the "
        f"Oracle.{name}{ORACLE_METHODS[name]} SafeFiles expects: check "
        "SafeFiles against it before widening the pin in pyproject.toml")


def test_overrides_match_the_methods_they_replace():
    overridden = [name for name in vars(SafeFiles)
                  if callable(getattr(kt.Oracle, name, None))]
    assert set(overridden) == {"save", "_save_trial", "reload"}
    for name in overridden:
        assert name in ORACLE_METHODS, name
        assert (str(inspect.signature(getattr(SafeFiles, name)))
                == ORACLE_METHODS[name]), name


def test_project_dir_and_trial_files_are_where_safe_files_reads_them():
    assert isinstance(inspect.getattr_static(kt.Oracle, "_project_dir"),
                      property), (
        f"{WRITTEN_FOR}, whose Oracle has no _project_dir property")
    load = kt.engine.trial.Trial.load
    assert str(inspect.signature(load)) == "(fname)", (
        f"{WRITTEN_FOR}, whose Trial.load{inspect.signature(load)} differs "
        "from the Trial.load(fname) SafeFiles calls")


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_rebuilt_state_has_the_keys_the_oracle_saves(name, tmp_path):
    # A rebuilt oracle.json must be one the release's set_state reads: no
    # key renamed or added since the series SafeFiles was written for.
    budget = {"max_epochs" if name == "hyperband" else "max_trials": 2}
    oracle = ORACLES[name](objective=kt.Objective("val_accuracy", "max"),
                           **budget)
    oracle._set_project_dir(str(tmp_path), "study")
    saved = oracle.get_state()
    rebuilt = oracle._rebuilt_state()
    assert set(rebuilt) == set(saved), (
        f"{WRITTEN_FOR}: the {name} oracle's state keys "
        f"{sorted(set(saved) ^ set(rebuilt))} differ from those "
        "SafeFiles._rebuilt_state writes")
    oracle.set_state(rebuilt)


def test_pyproject_pins_the_series_safe_files_was_written_for():
    major, minor = map(int, KERAS_TUNER_SERIES.split("."))
    with open(REPO / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert extras["keras-tuner"] == [
        f"keras-tuner[bayesian]>={major}.{minor},<{major}.{minor + 1}"]
    assert kt.__version__.startswith(f"{KERAS_TUNER_SERIES}."), WRITTEN_FOR
