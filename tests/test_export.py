"""Exported models reload exactly, whatever their vocabulary holds."""

import json
import subprocess
import sys

import numpy as np
import pytest

from data_pipeline.config import DataConfig
from data_pipeline.sources import load_splits
from data_pipeline.text import (LINE_BREAKS, load_vocabulary,
                                make_vectorizer, save_vocabulary)
from launch.presets import get_preset
from models.builder import build_model
from models.config import ModelConfig
from tuning.trial.export import export_model

from commands import REPO

RELOAD = """
import json, sys
import keras, numpy as np
import rnntune  # noqa: F401  registers what exported models hold
texts = json.loads(sys.stdin.read())
out = {}
for path, batch in texts.items():
    model = keras.models.load_model(path)
    out[path] = {
        "probs": model.predict(np.asarray(batch, dtype=object),
                               verbose=0).tolist(),
        "vocabulary": model.get_layer("vectorizer").get_vocabulary()}
print(json.dumps(out))
"""


def _reload_elsewhere(texts_by_model: dict[str, list[str]]) -> dict:
    """Loads each model in a fresh process and predicts its texts."""
    out = subprocess.run([sys.executable, "-c", RELOAD], cwd=REPO,
                         input=json.dumps(texts_by_model),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _export(vectorizer, path):
    model = build_model(ModelConfig(cell="gru", units=4, num_layers=1,
                                    embedding_dim=4, mask_zero=True,
                                    head_units=0),
                        vocab_size=vectorizer.vocabulary_size(),
                        num_classes=2)
    exported = export_model(vectorizer, model)
    exported.save(path)
    return exported


def _check_round_trip(cases: dict, tmp_path):
    """cases: name -> (vectorizer, texts to predict)."""
    expected, texts = {}, {}
    for name, (vectorizer, batch) in cases.items():
        path = str(tmp_path / f"{name}.keras")
        exported = _export(vectorizer, path)
        expected[path] = (
            exported.predict(np.asarray(batch, dtype=object), verbose=0),
            [str(t) for t in vectorizer.get_vocabulary()])
        texts[path] = list(batch)
        save_vocabulary(vectorizer, tmp_path / f"{name}.txt")
        assert load_vocabulary(tmp_path / f"{name}.txt") == expected[path][1]
    for path, got in _reload_elsewhere(texts).items():
        probs, vocabulary = expected[path]
        assert got["vocabulary"] == vocabulary
        np.testing.assert_allclose(got["probs"], probs, rtol=1e-5, atol=1e-6)


def test_tokens_holding_line_breaks_survive_export_and_vocabulary_txt(
        tmp_path):
    texts = [f"good{c}film and bad{c} {c}lone {c}" for c in LINE_BREAKS]
    texts += ["back\\slash u0085 \\u0085 plain words"] * 2
    vectorizer = make_vectorizer(max_tokens=200, sequence_length=8,
                                 train_texts=np.asarray(texts, dtype=object))
    vocabulary = vectorizer.get_vocabulary()
    odd = [t for t in vocabulary if any(c in t for c in LINE_BREAKS)]
    # Every character that str.splitlines() breaks on and that the
    # whitespace split keeps inside a token.
    assert {c for t in odd for c in t if c in LINE_BREAKS} == set(
        "\x1c\x1d\x1e\x85\u2028\u2029")
    assert "backslash" in vocabulary  # the seed strips punctuation
    _check_round_trip({"crafted": (vectorizer, texts)}, tmp_path)
    lines = (tmp_path / "crafted.txt").read_text(encoding="utf-8")
    assert len(lines.split("\n")) == len(vocabulary) + 1
    assert not any(c in lines for c in LINE_BREAKS.replace("\n", ""))


@pytest.mark.slow
def test_full_embedded_vocabularies_round_trip_through_an_export(tmp_path):
    cases = {}
    for preset in ("imdb", "rotten_tomatoes"):
        data = get_preset(preset).data
        splits = load_splits(data)
        vectorizer = make_vectorizer(max_tokens=data.max_tokens,
                                     sequence_length=data.sequence_length,
                                     train_texts=splits.train.texts)
        # The whole vocabulary: all max_tokens, or every word of a
        # corpus that has fewer (Rotten Tomatoes).
        assert 10_000 < vectorizer.vocabulary_size() <= data.max_tokens
        cases[preset] = (vectorizer, list(splits.test.texts[:64]))
    imdb_vocabulary = cases["imdb"][0].get_vocabulary()
    assert any("\x85" in t for t in imdb_vocabulary)  # what broke before
    _check_round_trip(cases, tmp_path)


def test_vectorizer_keeps_its_vocabulary_in_its_config():
    data = DataConfig(source="imdb", max_examples=200)
    splits = load_splits(data)
    vectorizer = make_vectorizer(max_tokens=300, sequence_length=10,
                                 train_texts=splits.train.texts)
    config = vectorizer.get_config()
    assert list(config["vocabulary"]) == vectorizer.get_vocabulary()
