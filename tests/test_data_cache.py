"""The vectorized-data cache: built once, opened memory-mapped, identical
to vectorizing in memory, rebuilt when damaged or when its source changes,
derived for a smaller vocabulary or length, never left half-written."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from data_pipeline.cache import DataCache
from data_pipeline.cache_entry import open_entry
from data_pipeline.config import DataConfig, DataError
from data_pipeline.pipeline import VectorizedSplits
from data_pipeline.sources import load_splits
from tuning.trial.config import apply_overrides, differences
from tuning.trial.train import train_and_evaluate


def _data(reviews_csv, **fields) -> DataConfig:
    return DataConfig(source="csv", path=str(reviews_csv), max_tokens=500,
                      sequence_length=40, **fields)


def _same(a: VectorizedSplits, b: VectorizedSplits) -> None:
    assert a.vocabulary == b.vocabulary
    assert set(a.ids) == set(b.ids)
    for name in a.ids:
        assert np.array_equal(a.ids[name], b.ids[name])
        assert a.ids[name].shape == b.ids[name].shape
        assert np.array_equal(a.labels[name], b.labels[name])
        assert np.array_equal(a.lengths[name], b.lengths[name])
    assert a.info == b.info
    assert (None if a.test_texts is None else list(a.test_texts)) == (
        None if b.test_texts is None else list(b.test_texts))


def _fresh(data: DataConfig) -> VectorizedSplits:
    return VectorizedSplits.build(load_splits(data),
                                  max_tokens=data.max_tokens,
                                  sequence_length=data.sequence_length)


def test_an_entry_is_built_once_then_opened_mapped_and_equal(
        reviews_csv, tmp_path):
    data = _data(reviews_csv)
    lines = []
    cache = DataCache(tmp_path / "cache", report=lines.append)
    first = cache.open(data)
    assert [line.split(" ")[2] for line in lines] == ["building"]
    again = DataCache(tmp_path / "cache", report=lines.append).open(data)
    assert len(lines) == 1  # opened, not built again
    assert isinstance(again.ids["train"], np.memmap)
    assert again.ids["train"].dtype == np.uint16  # 500 tokens fit
    _same(first, again)
    _same(again, _fresh(data))
    # Where data is cached is not part of what it is.
    elsewhere = dataclasses.replace(data, cache_dir=str(tmp_path / "other"),
                                    bucket_by_length=True)
    assert DataCache(tmp_path / "cache", report=lines.append).open(
        elsewhere).ids["train"].filename == again.ids["train"].filename
    assert len(lines) == 1
    entries = [p for p in (tmp_path / "cache").iterdir()
               if not p.name.startswith(".")]
    assert len(entries) == 1
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert meta["examples"] == {"train": 216, "validation": 54, "test": 30}


@pytest.mark.parametrize("damage", ["truncated ids", "no meta",
                                    "short vocabulary", "test texts",
                                    "labels flipped"])
def test_a_damaged_entry_is_rebuilt_with_a_line_saying_so(
        reviews_csv, tmp_path, damage):
    data = _data(reviews_csv)
    DataCache(tmp_path, report=lambda line: None).open(data)
    path = next(p for p in tmp_path.iterdir() if not p.name.startswith("."))
    if damage == "truncated ids":
        with open(path / "train.ids.npy", "r+b") as f:
            f.truncate(os.path.getsize(path / "train.ids.npy") // 2)
    elif damage == "no meta":
        (path / "meta.json").unlink()
    elif damage == "short vocabulary":
        lines = (path / "vocabulary.txt").read_text().split("\n")
        (path / "vocabulary.txt").write_text("\n".join(lines[:-3]))
    elif damage == "labels flipped":  # same size, shape and type
        labels = np.load(path / "train.labels.npy")
        np.save(path / "train.labels.npy", 1 - labels)
    else:
        (path / "test.texts.bin").write_bytes(b"x")
    lines = []
    rebuilt = DataCache(tmp_path, report=lines.append).open(data)
    assert lines[0].startswith(f"data cache: {path} is damaged (")
    assert lines[0].endswith("; rebuilding") and len(lines) == 2
    # (Compared with a fresh build: the damaged entry's own arrays, mapped
    # from a file cut short, would fault.)
    _same(rebuilt, _fresh(data))
    open_entry(path, None)  # whole again


def test_a_changed_source_file_is_built_anew(reviews_csv, tmp_path):
    source = tmp_path / "reviews.csv"
    shutil.copy(reviews_csv, source)
    data = _data(source)
    lines = []
    cache = DataCache(tmp_path / "cache", report=lines.append)
    before = cache.open(data)
    with open(source, "a") as f:
        f.write('"one more review, and a good one",1\n')
    after = cache.open(data)
    assert sum("building" in line for line in lines) == 2
    assert sum(map(len, after.labels.values())) == sum(
        map(len, before.labels.values())) + 1


def test_a_smaller_vocabulary_or_length_is_derived_exactly(
        reviews_csv, tmp_path):
    lines = []
    cache = DataCache(tmp_path, report=lines.append)
    cache.open(_data(reviews_csv))
    for tokens, length in ((120, 40), (500, 13), (37, 9)):
        smaller = dataclasses.replace(_data(reviews_csv), max_tokens=tokens,
                                      sequence_length=length)
        derived = cache.open(smaller)
        assert lines[-1].startswith("data cache: deriving")
        # Exactly what a fresh adapt and vectorize of the corpus gives.
        _same(derived, _fresh(smaller))
    assert sum("building" in line for line in lines) == 1


def test_bad_data_leaves_no_entry_and_says_what_is_wrong(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\ngood film,1\nbad film,\n")
    cache = DataCache(tmp_path / "cache", report=lambda line: None)
    with pytest.raises(DataError, match="line 3: missing label"):
        cache.open(DataConfig(source="csv", path=str(path)))
    assert [p.name for p in (tmp_path / "cache").iterdir()
            if not p.name.endswith(".lock")] == []
    with pytest.raises(DataError, match="no such file"):
        cache.open(DataConfig(source="csv", path=str(tmp_path / "no.csv")))


def test_a_run_is_the_same_with_and_without_the_cache(smoke_config,
                                                       tmp_path):
    config = apply_overrides(smoke_config, {"train.epochs": 2})
    cached = train_and_evaluate(config, tmp_path / "cached",
                                report=lambda line: None)
    uncached_config = apply_overrides(config, {"data.cache": False})
    uncached = train_and_evaluate(uncached_config, tmp_path / "uncached",
                                  report=lambda line: None)
    assert differences(config, uncached_config) == []
    for key in ("best_val_accuracy", "final_train_accuracy",
                "final_val_loss", "test_accuracy", "test_loss"):
        assert getattr(cached, key) == pytest.approx(getattr(uncached, key),
                                                     abs=1e-6), key
    runtimes = [json.loads((tmp_path / name / "config.json").read_text())
                ["runtime"] for name in ("cached", "uncached")]
    for key in ("fingerprints", "examples", "vocabulary_size",
                "class_names", "data"):
        assert runtimes[0][key] == runtimes[1][key]
    assert (tmp_path / "cached" / "vocabulary.txt").read_text() == (
        tmp_path / "uncached" / "vocabulary.txt").read_text()


@pytest.mark.slow
def test_a_data_space_study_reads_its_corpus_once(smoke_config, tmp_path):
    from studies import study_spec

    from tuning.tune import run_study

    base = apply_overrides(smoke_config, {"train.early_stopping_patience": 0,
                                          "data.sequence_length": 12})
    spec = study_spec(base, {
        "data.sequence_length": {"choice": [6, 12, 24]},
        "data.max_tokens": {"int": [50, 400], "step": 50}},
        backend="keras-tuner", algorithm="random", max_trials=3,
        max_epochs=1)
    lines = []
    run_study(tmp_path, spec, report=lines.append)
    # Built once, at the widest the space asks for, before any trial.
    built = [line for line in lines if "data cache: building" in line]
    assert len(built) == 1
    assert lines.index(built[0]) < min(
        i for i, line in enumerate(lines) if "[trial " in line)
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    for trial in (tmp_path / "trials").iterdir():
        config = json.loads((trial / "config.json").read_text())
        data = config["config"]["data"]
        entry = DataCache(tmp_path / "data_cache").open(DataConfig(**data))
        assert entry.sequence_length == data["sequence_length"]
        assert len(entry.vocabulary) <= data["max_tokens"]
        assert config["runtime"]["fingerprints"] == (
            provenance["fingerprints"])
        assert (trial / "vocabulary.txt").read_text().count("\n") == len(
            entry.vocabulary)


def test_a_cache_that_cannot_be_written_reads_the_data_in_process(
        reviews_csv, tmp_path):
    data = _data(reviews_csv)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")  # even root cannot make a directory here
    lines = []
    vectorized = DataCache(blocked, report=lines.append).open(data)
    assert len(lines) == 1 and lines[0].startswith(
        f"data cache: cannot write {blocked} (")
    assert "--no-cache" in lines[0]
    _same(vectorized, _fresh(data))


def test_a_builder_killed_mid_write_leaves_no_entry_and_is_cleaned_up(
        reviews_csv, tmp_path):
    import signal
    import subprocess
    import sys

    from commands import REPO

    data = _data(reviews_csv)
    # A builder that is killed -9 while it writes its entry's files.
    script = (
        "import sys, time, data_pipeline.cache as c\n"
        "import data_pipeline.cache_entry as entry\n"
        "from data_pipeline.config import DataConfig\n"
        "def slow(*a):\n"
        "    print('writing', flush=True); time.sleep(60)\n"
        "entry.PackedTexts.write = staticmethod(slow)\n"
        f"c.DataCache({str(tmp_path)!r}).open(DataConfig(source='csv', "
        f"path={str(reviews_csv)!r}, max_tokens=500, sequence_length=40))\n")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().startswith("data cache: building")
    assert child.stdout.readline() == "writing\n"
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = [p.name for p in tmp_path.iterdir() if p.is_dir()]
    assert len(left) == 1 and left[0].startswith(".")  # staging, no entry
    lines = []
    rebuilt = DataCache(tmp_path, report=lines.append).open(data)
    assert [line.split(" ")[2] for line in lines] == ["building"]
    assert [p.name for p in tmp_path.iterdir()
            if p.is_dir() and p.name.startswith(".")] == []
    _same(rebuilt, _fresh(data))


def test_shipped_data_serves_what_the_cache_would_derive(reviews_csv,
                                                         tmp_path):
    from data_pipeline.cache import ShippedData

    widest = _data(reviews_csv)
    shipped = ShippedData.of(widest, DataCache(tmp_path).open(widest))
    assert "test" not in shipped.vectorized.ids  # trials never see it
    assert shipped.open(widest) is shipped.vectorized
    for tokens, length in ((120, 40), (37, 9)):
        smaller = dataclasses.replace(widest, max_tokens=tokens,
                                      sequence_length=length)
        assert shipped.serves(smaller)
        served, fresh = shipped.open(smaller), _fresh(smaller)
        assert served.vocabulary == fresh.vocabulary
        for name in ("train", "validation"):
            assert served.ids[name].dtype == fresh.ids[name].dtype
            assert np.array_equal(served.ids[name], fresh.ids[name])
            assert np.array_equal(served.lengths[name], fresh.lengths[name])
            assert np.array_equal(served.labels[name], fresh.labels[name])
    # Not what it holds: longer, more tokens, or other splits.
    for other in (dataclasses.replace(widest, sequence_length=41),
                  dataclasses.replace(widest, max_tokens=501),
                  dataclasses.replace(widest, seed=widest.seed + 1)):
        assert not shipped.serves(other)
