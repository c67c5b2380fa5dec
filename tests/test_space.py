"""Search spaces: files, validation, conditions, grids."""

import json

import pytest

from tuning.trial.config import Config, ConfigError
from tuning.study.space import SPACES, from_dict, get_space, load


def test_named_spaces_validate_and_cover_every_cell():
    for name in SPACES:
        space = get_space(name)
        assert space.keys[0] == "model.cell"
    cells = get_space("cells").dimensions[0].values
    assert set(cells) == {"simple_rnn", "gru", "lstm"}


def test_json_and_toml_files_give_the_same_space(tmp_path):
    spec = {"model.cell": {"choice": ["gru", "lstm"]},
            "model.units": {"int": [16, 64], "step": 16},
            "train.learning_rate": {"float": [1e-4, 1e-2], "log": True},
            "model.bidirectional": {"choice": [False, True],
                                    "when": {"model.cell": ["lstm"]}}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    (tmp_path / "s.toml").write_text(
        '["model.cell"]\nchoice = ["gru", "lstm"]\n'
        '["model.units"]\nint = [16, 64]\nstep = 16\n'
        '["train.learning_rate"]\nfloat = [1e-4, 1e-2]\nlog = true\n'
        '["model.bidirectional"]\nchoice = [false, true]\n'
        'when = { "model.cell" = ["lstm"] }\n')
    # TOML's own tables, as a TOML user writes them: `[model.units]`.
    (tmp_path / "tables.toml").write_text(
        '[model.cell]\nchoice = ["gru", "lstm"]\n'
        '[model.units]\nint = [16, 64]\nstep = 16\n'
        '[train.learning_rate]\nfloat = [1e-4, 1e-2]\nlog = true\n'
        '[model.bidirectional]\nchoice = [false, true]\n'
        'when = { "model.cell" = ["lstm"] }\n')
    a, b = load(tmp_path / "s.json"), load(tmp_path / "s.toml")
    assert a.dimensions == b.dimensions
    assert a.dimensions[1].grid() == [16, 32, 48, 64]
    c = load(tmp_path / "tables.toml")
    assert sorted(c.dimensions, key=lambda d: d.key) == sorted(
        a.dimensions, key=lambda d: d.key)


def test_conditions_drop_inactive_values():
    space = get_space("cells")
    values = {"model.cell": "simple_rnn", "model.bidirectional": True,
              "model.units": 32}
    assert space.active(values) == {"model.cell": "simple_rnn",
                                    "model.units": 32}
    config = space.configure(Config(), values)
    assert config.model.bidirectional is False
    assert config.model.units == 32


@pytest.mark.parametrize("spec, expected", [
    ({"model.unitz": {"int": [1, 2]}}, "unknown config key 'model.unitz'"),
    ({"model.units": {"int": [0, 8]}}, "model.units=0: expected an integer"),
    ({"model.units": {"int": [8, 4]}}, "low 8 must be < high 4"),
    ({"model.units": {"float": [1.5, 4]}}, "does not fit the key's type"),
    ({"model.cell": {"choice": ["gru", "rnn"]}}, "model.cell='rnn'"),
    ({"model.dropout": {"float": [0.1, 0.9], "log": True, "step": 0.1}},
     "use step or log, not both"),
    ({"train.learning_rate": {"float": [0, 1], "log": True}},
     "a log range needs low > 0"),
    ({"model.units": {"int": [1, 4], "sample": "x"}}, "unknown field"),
    ({"model.units": {"choice": [4], "int": [1, 2]}}, "exactly one of"),
    ({"model.units": {"int": [4, 8], "when": {"model.cell": ["gru"]}}},
     "must be a choice listed before it"),
    ({"model.cell": {"choice": ["gru"]},
      "model.units": {"int": [4, 8], "when": {"model.cell": ["lstm"]}}},
     "are not choices of model.cell"),
    ({}, "expected a non-empty table"),
])
def test_bad_spaces_are_one_line_errors(spec, expected):
    with pytest.raises(ConfigError) as e:
        from_dict(spec)
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_space_files(tmp_path):
    with pytest.raises(ConfigError, match="unknown space 'nope'"):
        get_space("nope")
    with pytest.raises(ConfigError, match="no such space file"):
        get_space(str(tmp_path / "none.json"))
    (tmp_path / "bad.toml").write_text("[oops\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid toml"):
        get_space(str(tmp_path / "bad.toml"))
    (tmp_path / "key.json").write_text('{"model.x": {"choice": [1]}}')
    with pytest.raises(ConfigError, match=r"key.json: unknown config key"):
        get_space(str(tmp_path / "key.json"))


def test_a_space_that_searches_recurrent_dropout_says_it_leaves_cudnn(
        tmp_path, capsys):
    from launch.cli import main

    assert from_dict({"model.recurrent_dropout": {"choice": [0.0]}}
                     ).notes() == []
    for spec in ({"choice": [0.0, 0.2]}, {"float": [0.0, 0.4]}):
        (note,) = from_dict({"model.recurrent_dropout": spec}).notes()
        assert "cuDNN" in note
    path = tmp_path / "rd.json"
    path.write_text(json.dumps({"model.recurrent_dropout":
                                {"float": [0.0, 0.4]}}))
    assert main(["spaces", str(path)]) == 0
    assert "note: model.recurrent_dropout above 0 keeps" in (
        capsys.readouterr().out)
