"""Options declared once: a dataclass field with its help is the parser's
option, the `study.json` key and the rendered command line's argument."""

import argparse
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from launch import options
from launch.cli import main
from launch.k8s import RayJobSpec
from launch.options import option
from launch.presets import get_preset
from launch.slurm import SlurmSpec, render
from launch.studies import TUNE_ONLY, StudyOptions
from tuning.study.space import get_space
from tuning.study.spec import Runtime, StudySpec, load_spec, save_spec

STUDY = ["--preset", "smoke", "--space", "tiny", "--backend", "ray",
         "--algorithm", "asha", "--max-trials", "4"]


def _squeezed(text: str) -> str:
    """Help text without whitespace: argparse wraps to the terminal."""
    return "".join(text.split())


def _parse(cls, argv):
    parser = argparse.ArgumentParser()
    options.add_options(parser, cls)
    return parser, parser.parse_args(argv)


def test_a_new_field_reaches_help_study_json_and_the_job_script(tmp_path):
    # A study option added as one field, on a stand-in for StudySpec; the
    # stand-in for StudyOptions differs from it only by naming that class.
    @dataclasses.dataclass(frozen=True)
    class Spec(StudySpec):
        warmup_trials: int = option(2, help="random trials before the "
                                    "search algorithm takes over")

    @dataclasses.dataclass(frozen=True)
    class Options(StudyOptions):
        study: Mapping[str, Any] = options.group(Spec, required=False)

    parser, args = _parse(Options, [*STUDY, "--warmup-trials", "5"])
    assert _squeezed("--warmup-trials WARMUP_TRIALS random trials before "
                     "the search algorithm takes over (default: 2)"
                     ) in _squeezed(parser.format_help())

    given = Options.from_args(args)
    spec = given.spec("tune")
    assert isinstance(spec, Spec) and spec.warmup_trials == 5
    save_spec(tmp_path, spec)
    assert json.loads((tmp_path / "study.json").read_text())[
        "warmup_trials"] == 5
    assert Spec.from_dict(spec.to_dict()) == spec
    older = {k: v for k, v in spec.to_dict().items()
             if k != "warmup_trials"}
    assert Spec.from_dict(older).warmup_trials == 2  # a study saved before

    script = render(SlurmSpec(mode="ray", workdir="/scratch/s",
                              python="/venv/bin/python",
                              tune_args=tuple(given.argv())))
    assert ("-m launch tune --preset smoke --space tiny --backend ray "
            "--algorithm asha --max-trials 4 --warmup-trials 5 "
            "--workdir") in script
    _, default = _parse(Options, STUDY)
    assert "--warmup-trials" not in Options.from_args(default).argv()


def test_study_json_keeps_its_keys_and_values(tmp_path):
    spec = StudySpec(base=get_preset("smoke"),
                     space=get_space("tiny"),
                     backend="keras-tuner", algorithm="random",
                     max_trials=3, objective="val_loss", max_epochs=2,
                     retrain_best=True, seed=7, confirm_top=1)
    save_spec(tmp_path, spec)
    written = (tmp_path / "study.json").read_text()
    # What the hand-written to_dict wrote, key for key, in its order.
    assert list(json.loads(written)) == [
        "base", "space", "space_name", "backend", "algorithm", "max_trials",
        "objective", "max_epochs", "max_consecutive_failures",
        "retrain_best", "seed", "confirm_top", "confirm_seeds", "ensemble"]
    assert json.loads(written) | {"base": None, "space": None} == {
        "base": None, "space": None, "space_name": "tiny",
        "backend": "keras-tuner", "algorithm": "random", "max_trials": 3,
        "objective": "val_loss", "max_epochs": 2,
        "max_consecutive_failures": 3, "retrain_best": True, "seed": 7,
        "confirm_top": 1, "confirm_seeds": 3, "ensemble": 0}
    assert load_spec(tmp_path) == spec
    older = json.loads(written)
    del older["confirm_top"], older["confirm_seeds"], older["ensemble"]
    (tmp_path / "study.json").write_text(json.dumps(older))
    assert load_spec(tmp_path) == dataclasses.replace(spec, confirm_top=0)


@pytest.mark.parametrize("command", [
    ["tune", "--workdir", "w"],
    ["submit", "slurm", "--mode", "ray", "--workdir", "w"],
    ["submit", "k8s", "--name", "n", "--image", "i"]])
def test_help_shows_every_option_with_its_help_and_default(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = _squeezed(capsys.readouterr().out)
    classes = [StudyOptions, StudySpec, Runtime]
    classes += {"slurm": [SlurmSpec], "k8s": [RayJobSpec]}.get(
        command[1], [])
    for cls in classes:
        tune_only = TUNE_ONLY if cls is Runtime and command[0] != "tune" \
            else ()
        for field in options.option_fields(cls, exclude=tune_only):
            default = field.metadata.get("default_help", field.default)
            shown = "" if default in (dataclasses.MISSING, None, ()) or (
                default is False) else f" (default: {default})"
            assert _squeezed(f"{options.flag(field)} ") in text
            assert _squeezed(field.metadata["help"] + shown) in text


@pytest.mark.parametrize("extra", [
    [],
    ["--set", "model.units=8", "--set", "train.learning_rate=0.01",
     "--smoke", "--objective", "val_loss", "--max-epochs", "3"],
    ["--seed", "5", "--retrain-best", "--confirm-top", "2",
     "--confirm-seeds", "4", "--max-consecutive-failures", "1"],
    ["--devices", "cpu:2", "--gpus-per-trial", "0.5", "--cpus-per-trial",
     "2", "--concurrent-trials", "3", "--trust-study-dir"],
])
def test_argv_gives_the_same_options_back(extra):
    _, args = _parse(StudyOptions, [*STUDY, *extra])
    given = StudyOptions.from_args(args)
    _, again = _parse(StudyOptions, given.argv())
    assert StudyOptions.from_args(again) == given
    assert given.spec("tune") == StudyOptions.from_args(again).spec("tune")


def test_argv_leaves_defaults_out():
    _, args = _parse(StudyOptions, [*STUDY, "--seed", "0",
                                    "--max-consecutive-failures", "3"])
    assert StudyOptions.from_args(args).argv() == STUDY


def test_the_objective_defaults_to_the_presets():
    # A default the preset decides is kept when given: another preset's
    # may differ.
    _, args = _parse(StudyOptions, [*STUDY, "--preset", "basic_motions"])
    assert StudyOptions.from_args(args).spec("tune").objective == "val_loss"
    _, args = _parse(StudyOptions, [*STUDY, "--objective", "val_accuracy"])
    given = StudyOptions.from_args(args)
    assert given.argv() == [*STUDY, "--objective", "val_accuracy"]
    assert given.spec("tune").objective == "val_accuracy"


def test_cluster_defaults_are_the_specs_own():
    _, args = _parse(SlurmSpec, ["--mode", "single"])
    assert SlurmSpec(**options.values(args, SlurmSpec), workdir="/w",
                     python="/p", tune_args=()) == SlurmSpec(
        mode="single", workdir="/w", python="/p", tune_args=())
    _, args = _parse(RayJobSpec, ["--name", "n", "--image", "i"])
    assert RayJobSpec(**options.values(args, RayJobSpec),
                      tune_args=()) == RayJobSpec("n", "i", ())
