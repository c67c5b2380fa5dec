"""The command line: bad input, compare, predict, TensorBoard, presets."""

import csv
import io
import json
import math
import os
import pathlib
import subprocess
import sys
import urllib.request

import pytest

from launch.cli import main
from launch.presets import PRESETS
from tuning.trial.config import Config

from commands import REPO, SMALL, run_cli
from polling import wait_until
from data_files import bad_data_sources
from servers import free_port


def _main(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_lists_one_line_each(capsys):
    code, out, _ = _main(capsys, "presets")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    code, out, _ = _main(capsys, "presets", "--keys")
    assert "model.cell = 'lstm'" in out.splitlines()
    code, out, _ = _main(capsys, "presets", "smoke", "--keys")
    assert "model.cell = 'gru'" in out.splitlines()
    code, _, err = _main(capsys, "presets", "nosuch", "--keys")
    assert code == 2 and "nosuch" in err


def test_a_preset_and_a_space_shown_in_full(capsys):
    from launch.presets import get_preset
    from tuning.study.space import get_space

    for smoke in (False, True):
        code, out, _ = _main(capsys, "presets", "imdb",
                             *(["--smoke"] if smoke else []))
        assert code == 0
        config = get_preset("imdb", smoke=smoke).flat()
        lines = out.splitlines()[2:]
        assert len(lines) == len(config)
        for line, (key, value) in zip(lines, config.items()):
            marked = line.startswith("* ")
            assert line[2:].startswith(f"{key} = {value!r}")
            assert marked == (value != Config().flat()[key]), line
        assert ("* model.pooling = 'mean'" in out) is smoke
    assert "* model.cell = 'gru'" in out and "['lstm']" in out
    code, out, _ = _main(capsys, "spaces", "cells")
    keys = [line.split()[0] for line in out.splitlines()[1:]]
    assert code == 0 and keys == get_space("cells").keys
    code, _, err = _main(capsys, "presets", "--smoke")
    assert code == 2 and "name the preset" in err


@pytest.mark.slow
def test_output_holds_no_library_chatter_unless_verbose(smoke_run):
    workdir, _ = smoke_run
    quiet = run_cli("predict", "--model", str(workdir / "model.keras"),
                    "a fine film")
    loud = run_cli("predict", "--model", str(workdir / "model.keras"),
                   "--verbose", "a fine film")
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stdout == loud.stdout and quiet.stdout.count("\n") == 1
    assert quiet.stderr == ""
    assert "cudart_stub.cc" in loud.stderr or "port.cc" in loud.stderr


def test_chatter_is_told_from_warnings_line_by_line():
    from tuning.trial.noise import is_noise

    assert is_noise(
        "WARNING:tensorflow:6 out of the last 6 calls to <function "
        "TensorFlowTrainer.make_predict_function.<locals>.one_step_on_data_"
        "distributed at 0x7f> triggered tf.function retracing. Tracing is "
        "expensive")
    assert not is_noise("WARNING:tensorflow:Gradients do not exist for "
                        "variables ['dense/kernel'] when minimizing the loss")
    assert not is_noise("UserWarning: retracing of the model is slow")


@pytest.mark.slow
def test_a_terminal_sees_each_epoch_live(tmp_path):
    """On a terminal the step, rate and time left are shown in place
    within the epoch; piped output (every other test) has none."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "launch", "train", "--preset", "smoke",
         "--set", "data.max_examples=1500", "--set", "train.epochs=1",
         "--workdir", str(tmp_path / "run")], cwd=REPO, stdin=terminal,
        stdout=terminal, stderr=terminal)
    os.close(terminal)
    out = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert process.wait(timeout=300) == 0
    text = out.decode()
    assert "\r\x1b[Kepoch 1/1  step " in text and " steps/s  " in text
    assert " left" in text and "\nmodel: " in text


def _config_errors(tmp_path):
    return [
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--preset", "smoke", "--set", "model.unitz=3"],
         "unknown config key 'model.unitz'"),
        (["--preset", "smoke", "--set", "model.units=-1"],
         "model.units=-1: expected an integer >= 1"),
        (["--preset", "smoke", "--set", "model.dropout=1.5"],
         "expected a number in [0, 1)"),
        (["--preset", "smoke", "--set", "data.source=tweets"],
         "data.source='tweets': expected one of imdb"),
        (["--preset", "smoke", "--set", "model.cell=transformer"],
         "model.cell='transformer'"),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    cases = [(args, expected) for args, expected in _config_errors(tmp_path)]
    for _, config, expected in bad_data_sources(tmp_path / "data"):
        sets = ["--set", f"data.source={config.source}",
                "--set", f"data.path={config.path}"]
        cases.append((["--preset", "smoke", *sets], expected))
    for i, (args, expected) in enumerate(cases):
        for command in ("train", "compare"):
            workdir = tmp_path / f"run{i}{command}"
            code, out, err = _main(capsys, command, *args, "--workdir",
                                   str(workdir))
            assert code == 2, (args, err)
            assert err.startswith("rnntune: error: "), err
            assert expected in err, (expected, err)
            assert err.count("\n") == 1 and "Traceback" not in err
            assert not workdir.exists(), args


def test_bad_cells_and_predict_inputs(tmp_path, capsys):
    code, _, err = _main(capsys, "compare", "--cells", "gru,rnn",
                         "--workdir", str(tmp_path / "w"))
    assert code == 2 and "--cells 'gru,rnn': expected" in err
    code, _, err = _main(capsys, "predict", "--model",
                         str(tmp_path / "none.keras"), "hi")
    assert code == 2 and "none.keras: no such model file" in err
    study = tmp_path / "study"
    for inside in ("best", "trials/0"):
        (study / inside).mkdir(parents=True)
        (study / inside / "model.keras").write_bytes(b"")
    code, _, err = _main(capsys, "predict", "--model", str(study), "hi")
    assert code == 2 and err.endswith(
        f"study: holds no model.keras itself; the models in it: --model "
        f"{study / 'best'}\n"), err
    texts = tmp_path / "texts.txt"
    texts.write_text("a fine film\n")
    code, _, err = _main(capsys, "predict", "--model", str(study / "best"),
                         "--file", str(texts), "hi")
    assert code == 2 and "and texts given as arguments: pass one or the " \
        "other" in err, err
    code, _, err = _main(capsys, "tensorboard", "--workdir",
                         str(tmp_path / "absent"))
    assert code == 2 and "absent: no such directory" in err


def _one_line_error(code, err, expected):
    assert code == 2, err
    assert err.startswith("rnntune: error: ") and expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_mistakes_that_used_to_pass_or_trace_back(tmp_path, capsys):
    run = tmp_path / "run"
    cases = [
        (["train", "--preset", "smoke", "--set", "train.learning_rate=inf",
          "--workdir", str(run)],
         "train.learning_rate='inf': expected a finite number"),
        (["train", "--preset", "smoke", "--set", "model.dropout=nan",
          "--workdir", str(run)], "expected a finite number"),
        (["tune", "--preset", "smoke", "--space", "tiny", "--backend",
          "keras-tuner", "--algorithm", "random", "--max-trials", "2",
          "--max-epochs", "0", "--workdir", str(run)],
         "max_epochs=0: expected an integer >= 1"),
        (["tune", "--preset", "smoke", "--space", "tiny", "--backend",
          "optuna", "--workdir", str(run)],
         "argument --backend: invalid choice: 'optuna'"),
        (["tensorboard", "--workdir", str(tmp_path), "--port", "99999"],
         "--port 99999: expected a port number from 1 to 65535"),
        (["tune", "--preset", "smoke", "--space", "tiny", "--backend",
          "keras-tuner", "--algorithm", "random", "--max-trials", "2",
          "--confirm-seeds", "2", "--workdir", str(run)],
         "--confirm-seeds: seeds of the confirmations --confirm-top K asks "
         "for; give both, or neither"),
    ]
    for argv, expected in cases:
        try:
            code, _, err = _main(capsys, *argv)
        except SystemExit as e:  # argparse's own exit
            code, err = e.code, capsys.readouterr().err
        _one_line_error(code, err, expected)
        assert not run.exists(), argv


def test_unusable_workdirs_are_one_line_errors(tmp_path, capsys):
    as_file = tmp_path / "a-file"
    as_file.write_text("x")
    # Root writes anywhere but in sysfs; others are kept out by the mode.
    if os.geteuid() == 0:
        locked = pathlib.Path("/sys/kernel/rnntune-run")
    else:
        (tmp_path / "locked").mkdir(mode=0o555)
        locked = tmp_path / "locked" / "run"
    for workdir, expected in ((as_file, "a-file: exists and is not a "
                               "directory"),
                              (locked, f"{locked}: cannot write there")):
        for command in ("train", "compare"):
            code, _, err = _main(capsys, command, "--preset", "smoke",
                                 "--workdir", str(workdir))
            _one_line_error(code, err, expected)
    assert as_file.read_text() == "x" and not locked.exists()


def test_models_that_do_not_load_are_one_line_errors(smoke_run, tmp_path,
                                                     capsys):
    import keras

    whole = (smoke_run[0] / "model.keras").read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(whole[:len(whole) // 2])
    text = tmp_path / "text.keras"
    text.write_text("not a model")
    inputs = keras.Input(shape=(2,))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(
        lambda x: x * 2)(inputs))
    with_lambda = tmp_path / "lambda.keras"
    lambda_model.save(with_lambda)
    for path, expected in (
            (truncated, "truncated.keras: not a loadable Keras model"),
            (text, "text.keras: not a loadable Keras model"),
            (with_lambda, "lambda.keras: holds a Lambda layer (Python "
             "code), which safe mode refuses to load")):
        code, _, err = _main(capsys, "predict", "--model", str(path), "hi")
        _one_line_error(code, err, expected)


def test_predict_refuses_standard_input_that_is_not_utf8(smoke_run, capsys,
                                                         monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(b"fine\ncaf\xe9 cr\xe8me\n"))
    monkeypatch.setattr("sys.stdin", stdin)
    code, _, err = _main(capsys, "predict", "--model",
                         str(smoke_run[0] / "model.keras"))
    _one_line_error(code, err, "standard input: not UTF-8 text (byte 8)")


def test_console_entry_point_exits_2_without_traceback(tmp_path):
    out = run_cli("train", "--preset", "smoke", "--set",
                  "data.source=directory", "--set",
                  f"data.path={tmp_path / 'missing'}", "--workdir",
                  str(tmp_path / "w"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"rnntune: error: {tmp_path / 'missing'}: no such directory")
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "w").exists()


def test_compare_trains_each_cell_and_tabulates(tmp_path, capsys):
    workdir = tmp_path / "cmp"
    code, out, _ = _main(capsys, "compare", "--preset", "smoke",
                         *SMALL, "--cells", "simple_rnn,lstm",
                         "--workdir", str(workdir))
    assert code == 0
    assert "[1/2 simple_rnn] epoch 1/2" in out
    assert "[2/2 lstm] epoch 2/2" in out
    assert "(elapsed " in out
    table = [line for line in out.splitlines() if line.startswith(
        ("cell ", "simple_rnn ", "lstm "))]
    assert len(table) == 3 and "best val acc" in table[0]
    with open(workdir / "comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["cell"] for r in rows] == ["simple_rnn", "lstm"]
    assert json.loads((workdir / "comparison.json").read_text())[1][
        "cell"] == "lstm"
    for cell in ("simple_rnn", "lstm"):
        assert (workdir / f"curves_{cell}.png").read_bytes()[:4] == (
            b"\x89PNG")
        assert (workdir / cell / "model.keras").is_file()
        metrics = json.loads((workdir / cell / "metrics.json").read_text())
        row = next(r for r in rows if r["cell"] == cell)
        assert int(row["parameters"]) == metrics["parameters"]
        assert row["verdict"] == metrics["verdict"]
    # Only the cell chosen on validation meets the test split.
    results = {cell: json.loads((workdir / cell / "metrics.json")
                                .read_text()) for cell in ("simple_rnn",
                                                           "lstm")}
    chosen = max(results, key=lambda c: results[c]["best_val_accuracy"])
    assert [r["chosen"] for r in rows] == [
        str(c == chosen) for c in ("simple_rnn", "lstm")]
    for cell, metrics in results.items():
        row = next(r for r in rows if r["cell"] == cell)
        if cell == chosen:
            assert float(row["test_accuracy"]) == metrics["test_accuracy"]
            assert 0 <= metrics["test_accuracy"] <= 1
        else:
            assert row["test_accuracy"] == "nan"
            assert math.isnan(metrics["test_accuracy"])
    assert f"chosen by best val_accuracy: {chosen}, test accuracy" in out
    (line,) = [t for t in table if t.startswith(chosen)]
    assert line.rstrip().endswith("(chosen)")
    code, out, _ = _main(capsys, "report", "--workdir", str(workdir))
    assert code == 0 and f"chosen: {chosen}, test accuracy " in out


def _labels(smoke_run):
    return (smoke_run[0] / "labels.txt").read_text().split()


def _check_predictions(out, texts, labels):
    lines = out.strip().splitlines()
    assert len(lines) == len(texts)
    for line, text in zip(lines, texts):
        label, prob, shown = line.split("\t")
        assert label in labels
        assert 0.5 <= float(prob) <= 1.0
        assert text.startswith(shown.removesuffix("..."))


def test_predict_from_arguments_file_and_stdin(smoke_run, tmp_path, capsys,
                                               monkeypatch):
    model = str(smoke_run[0] / "model.keras")
    texts = ["A wonderful film, I loved it.<br />Go see it!",
             "Dull and far too long."]
    code, out, _ = _main(capsys, "predict", "--model", model, *texts)
    assert code == 0
    _check_predictions(out, texts, _labels(smoke_run))
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n\n")
    code, out, _ = _main(capsys, "predict", "--model", model, "--file",
                         str(path))
    _check_predictions(out, texts, _labels(smoke_run))
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts)))
    code, out, _ = _main(capsys, "predict", "--model", model)
    _check_predictions(out, texts, _labels(smoke_run))
    # The run's folder names its model too.
    code, out, _ = _main(capsys, "predict", "--model", str(smoke_run[0]),
                         *texts)
    _check_predictions(out, texts, _labels(smoke_run))
    (tmp_path / "empty.txt").write_text("\n")
    code, _, err = _main(capsys, "predict", "--model", model, "--file",
                         str(tmp_path / "empty.txt"))
    assert code == 2 and err == (f"rnntune: error: {tmp_path}/empty.txt: "
                                 "empty; nothing to predict\n")


def _get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_tensorboard_serves_the_run_on_loopback(smoke_run, tmp_path):
    port = free_port()
    output = tmp_path / "output.txt"
    with open(output, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "launch", "tensorboard", "--workdir",
             str(smoke_run[0]), "--port", str(port)], cwd=REPO,
            stdout=sink, stderr=subprocess.STDOUT)

    def every_log_served():
        try:
            runs = _get_json(f"http://127.0.0.1:{port}/data/runs")
        except OSError:
            return False
        return {"logs/train", "logs/validation", "logs/gap"} <= set(runs)

    try:
        wait_until(every_log_served, timeout=90,
                   what="TensorBoard to serve the train, validation and "
                   "gap logs")
        tags = _get_json(f"http://127.0.0.1:{port}/data/plugin/scalars/tags")
        assert "epoch_accuracy" in tags["logs/validation"]
        assert "epoch_accuracy_gap" in tags["logs/gap"]
        values = _get_json(
            f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?"
            "run=logs/train&tag=epoch_loss")
        assert [step for _, step, _ in values] == [0, 1]
    finally:
        process.terminate()
        process.wait(timeout=30)
    # No TensorFlow start-up lines, no data-loading advisory.
    lines = [line for line in output.read_text().splitlines() if line]
    assert lines[0] == (f"TensorBoard for {smoke_run[0]} at "
                        f"http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    assert len(lines) <= 2, lines


def test_a_missing_backend_is_one_line_and_writes_nothing(tmp_path):
    """The base install (`pip install -e .`) has neither tuning backend."""
    script = (
        "import sys\n"
        "sys.modules['ray'] = sys.modules['keras_tuner'] = None\n"
        "from launch.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    for backend, extra in (("ray", "rnntune[ray]"),
                           ("keras-tuner", "rnntune[keras-tuner]")):
        workdir = tmp_path / backend
        out = subprocess.run(
            [sys.executable, "-c", script, "tune", "--preset", "smoke",
             "--space", "tiny", "--backend", backend, "--algorithm",
             "random", "--max-trials", "1", "--workdir", str(workdir)],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("rnntune: error: the ") and (
            f"pip install '{extra}'" in out.stderr)
        assert out.stderr.count("\n") == 1
        assert not workdir.exists()


def test_a_worker_refuses_a_workdir_its_chief_does_not_serve(tmp_path,
                                                            capsys):
    from tuning.backends.kt_workers import CHIEF, check_chief

    code, out, err = _main(capsys, "worker", "--oracle", "127.0.0.1:1",
                           "--workdir", str(tmp_path / "absent"))
    _one_line_error(code, err, "absent: no such directory; give the "
                    "study's workdir")
    with pytest.raises(ValueError, match="no Keras Tuner chief has served"):
        check_chief(tmp_path, 5000)
    (tmp_path / CHIEF).write_text(json.dumps({"host": "127.0.0.1",
                                              "port": 5001}))
    with pytest.raises(ValueError, match="its study's chief serves on port "
                       "5001, not 5000"):
        check_chief(tmp_path, 5000)
    check_chief(tmp_path, 5001)
