"""Word vectors from a file: the formats users have on disk (GloVe and
word2vec text, fastText `.vec`, word2vec binary, gzip or not), the
embedding rows they start (frozen or fine-tuned), what the run records
of the file, and one-line errors for a file that does not fit."""

import gzip
import json
import hashlib

import keras
import numpy as np
import pytest
from commands import run_cli

import rnntune  # noqa: F401  registers what exported models hold
from data_pipeline.config import DataError
from data_pipeline.vectors import read_vectors
from launch.presets import get_preset
from tuning.study.space import from_dict
from tuning.trial.config import ConfigError, apply_overrides
from tuning.trial.run import RunDir
from tuning.trial.train import train_and_evaluate

VOCABULARY = ["", "[UNK]", "the", "film", "paris", "good"]


def text_vectors(words: dict, *, header: bool = False) -> bytes:
    width = len(next(iter(words.values())))
    lines = [f"{len(words)} {width}"] if header else []
    lines += [" ".join([w, *(repr(float(v)) for v in vector)])
              for w, vector in words.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def binary_vectors(words: dict) -> bytes:
    width = len(next(iter(words.values())))
    out = f"{len(words)} {width}\n".encode()
    for word, vector in words.items():
        out += word.encode() + b" " + np.asarray(vector, "<f4").tobytes() \
            + b"\n"
    return out


WORDS = {"the": [1, 2, 3], "film": [4, 5, 6], "Paris": [7, 8, 9],
         "unrelated": [0, 0, 1]}


@pytest.mark.parametrize("name, data", [
    ("glove.txt", text_vectors(WORDS)),
    ("word2vec.txt", text_vectors(WORDS, header=True)),
    ("fasttext.vec.gz", gzip.compress(text_vectors(WORDS, header=True))),
    ("word2vec.bin", binary_vectors(WORDS)),
    ("word2vec.bin.gz", gzip.compress(binary_vectors(WORDS))),
])
def test_every_format_gives_the_same_vectors(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    found = read_vectors(path, VOCABULARY, dimensions=3)
    # `paris` from `Paris`: the vocabulary is lower-cased.
    assert found.rows.tolist() == [2, 3, 4]
    np.testing.assert_array_equal(found.vectors,
                                  [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert found.record == {
        "file": name, "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(), "dimensions": 3,
        "words_covered": 3, "vocabulary": 6}
    assert found.describe(6) == f"vectors for 3 of 4 words (75.0%) from {name}"


def test_an_exact_match_wins_over_another_case(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(text_vectors({"The": [9, 9], "the": [1, 1]}))
    found = read_vectors(path, VOCABULARY)
    np.testing.assert_array_equal(found.vectors, [[1, 1]])


def test_a_file_that_does_not_fit_is_a_one_line_error(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(text_vectors(WORDS))
    with pytest.raises(DataError, match=r"v.txt: vectors of 3 dimensions; "
                       r"model.embedding_dim is 16 \(set "
                       r"model.embedding_dim=3\)"):
        read_vectors(path, VOCABULARY, dimensions=16)
    path.write_text("the 1 2 3\nfilm 4 5\n")
    with pytest.raises(DataError, match=r"v.txt:2: 2 numbers; the file's "
                       r"vectors have 3"):
        read_vectors(path, VOCABULARY)
    path.write_text("the 1 2 x\n")
    with pytest.raises(DataError, match=r"v.txt:1: 'x' in the vector of "
                       r"'the' is not a number"):
        read_vectors(path, VOCABULARY)
    path.write_text("the 1 2 3\nfilm 4 nan 6\n")
    with pytest.raises(DataError, match=r"v.txt:2: the vector of 'film' "
                       r"holds NaN or infinite values"):
        read_vectors(path, VOCABULARY)
    nan = binary_vectors({"the": [1, 2, 3], "film": [4, float("inf"), 6]})
    (tmp_path / "nan.bin").write_bytes(nan)
    with pytest.raises(DataError, match=r"nan.bin \(word 2\): the vector "
                       r"of 'film' holds NaN"):
        read_vectors(tmp_path / "nan.bin", VOCABULARY)
    damaged = gzip.compress(text_vectors(WORDS))
    for name, data in [("cut.txt.gz", damaged[:-12]),
                       ("bad.txt.gz", damaged[:12] + b"\xff\xfe"
                        + damaged[14:])]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=rf"{name}: a damaged gzip "
                           "file"):
            read_vectors(tmp_path / name, VOCABULARY)
    with pytest.raises(DataError, match="gone.txt: no such vectors file"):
        read_vectors(tmp_path / "gone.txt", VOCABULARY)
    cut = binary_vectors(WORDS)[:-10]
    (tmp_path / "cut.bin").write_bytes(cut)
    with pytest.raises(DataError, match=r"cut.bin: ends inside word 4's "
                       r"vector \(a cut file\?\)"):
        read_vectors(tmp_path / "cut.bin", VOCABULARY)


def test_frozen_vectors_reach_the_exported_model_unchanged(tmp_path):
    words = ["the", "movie", "film", "good", "bad", "great", "notaword"]
    rng = np.random.default_rng(0)
    vectors = {w: rng.normal(size=16).round(4) for w in words}
    path = tmp_path / "glove.16d.txt.gz"
    path.write_bytes(gzip.compress(text_vectors(vectors)))
    config = apply_overrides(get_preset("smoke"), {
        "model.pretrained_embeddings": str(path),
        "model.embedding_trainable": False, "train.epochs": 1,
        "data.max_examples": 400})
    lines = []
    train_and_evaluate(config, tmp_path / "run", report=lines.append)
    run = RunDir(tmp_path / "run")
    vocabulary = (run / run.VOCABULARY).read_text().splitlines()
    assert [line for line in lines if "pretrained" in line] == [
        "model.pretrained_embeddings: vectors for 6 of "
        f"{len(vocabulary) - 2:,} words ({6 / (len(vocabulary) - 2):.1%}) "
        "from "
        "glove.16d.txt.gz; frozen (model.embedding_trainable=false)"]
    record = run.read_runtime()["pretrained_embeddings"]
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["words_covered"] == 6
    model = keras.models.load_model(run.model_path)
    inner = model.layers[-1]
    matrix = keras.ops.convert_to_numpy(
        inner.get_layer("embedding").embeddings)
    for word in words[:-1]:
        np.testing.assert_allclose(matrix[vocabulary.index(word)],
                                   vectors[word], rtol=1e-6)


def test_vectors_of_another_width_stop_the_run_before_it_writes(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(text_vectors(WORDS))
    out = run_cli("train", "--preset", "smoke", "--set",
                  f"model.pretrained_embeddings={path}", "--workdir",
                  str(tmp_path / "run"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith(
        "v.txt: vectors of 3 dimensions; model.embedding_dim is 16 (set "
        "model.embedding_dim=3)")
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "config.json").exists()
    with pytest.raises(ConfigError, match="model.pretrained_embeddings="
                       "'v.txt': expected none for numeric series"):
        apply_overrides(get_preset("tecator"),
                        {"model.pretrained_embeddings": "v.txt"})
    # Searchable, as any key is.
    space = from_dict({"model.embedding_trainable": {"choice": [False, True]},
                       "model.pretrained_embeddings": {"choice": [str(path)]}
                       }, name="vectors")
    configured = space.configure(get_preset("smoke"), {
        "model.embedding_trainable": False,
        "model.pretrained_embeddings": str(path)})
    assert configured.model.pretrained_embeddings == str(path)
    assert configured.model.embedding_trainable is False


def test_a_study_checks_its_vectors_before_it_writes(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(text_vectors(WORDS))
    out = run_cli("tune", "--preset", "smoke", "--space", "tiny",
                  "--backend", "keras-tuner", "--algorithm", "random",
                  "--max-trials", "1", "--set",
                  f"model.pretrained_embeddings={path}", "--workdir",
                  str(tmp_path / "study"))
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].endswith(
        "v.txt: vectors of 3 dimensions; model.embedding_dim is 16 (set "
        "model.embedding_dim=3)")
    assert not (tmp_path / "study").exists()


def test_a_study_whose_every_trial_failed_exits_non_zero(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"model.pretrained_embeddings": {
        "choice": [str(tmp_path / "gone.txt")]}}))
    out = run_cli("tune", "--preset", "smoke", "--space", str(space),
                  "--backend", "keras-tuner", "--algorithm", "random",
                  "--max-trials", "1", "--workdir", str(tmp_path / "study"))
    assert out.returncode == 1, out.stderr[-2000:]
    assert "gone.txt: no such vectors file" in out.stdout + out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        "rnntune: no trial finished; each trial's error is above")
