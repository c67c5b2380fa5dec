"""Data sources: embedded, directory (aclImdb too), CSV, download; errors."""

import codecs
import tarfile

import numpy as np
import pytest

from data_pipeline.config import DataConfig
from data_pipeline.sources import DataError, load_splits

from data_files import bad_data_sources, make_class_tree, write


def make_aclimdb(root, per_class=10):
    make_class_tree(root / "train", {"pos": per_class, "neg": per_class,
                                     "unsup": 7})
    make_class_tree(root / "test", {"pos": 3, "neg": 3})
    write(root / "imdb.vocab", "the\nand\n")
    return root


def _all_texts(splits):
    parts = [splits.train, splits.validation]
    if splits.test is not None:
        parts.append(splits.test)
    return np.concatenate([p.texts for p in parts])


def test_embedded_imdb_splits_are_seeded_balanced_and_disjoint():
    splits = load_splits(DataConfig(source="imdb"))
    assert (len(splits.train), len(splits.validation),
            len(splits.test)) == (18000, 4500, 2500)
    assert splits.class_names == ("neg", "pos")
    for part in (splits.train, splits.validation, splits.test):
        assert np.bincount(part.labels).tolist() == [len(part) // 2] * 2
    assert len(set(_all_texts(splits))) >= 24_000  # a few duplicate reviews
    again = load_splits(DataConfig(source="imdb"))
    assert list(again.train.texts[:50]) == list(splits.train.texts[:50])
    other = load_splits(DataConfig(source="imdb", seed=7))
    assert list(other.train.texts[:50]) != list(splits.train.texts[:50])


def test_seed_split_without_test_is_the_notebook_80_20():
    splits = load_splits(DataConfig(source="imdb", test_split=0))
    assert (len(splits.train), len(splits.validation)) == (20000, 5000)
    assert splits.test is None


def test_embedded_rotten_tomatoes_and_cap():
    splits = load_splits(DataConfig(source="rotten_tomatoes"))
    assert sum(map(len, (splits.train, splits.validation,
                         splits.test))) == 8530
    small = load_splits(DataConfig(source="rotten_tomatoes",
                                   max_examples=100))
    assert sum(map(len, (small.train, small.validation, small.test))) == 100
    assert np.bincount(small.train.labels).tolist() == [36, 36]


def test_aclimdb_layout_keeps_test_and_ignores_unsup(tmp_path):
    root = make_aclimdb(tmp_path / "aclImdb")
    splits = load_splits(DataConfig(source="directory", path=str(root)))
    assert splits.class_names == ("neg", "pos")
    assert (len(splits.train), len(splits.validation)) == (16, 4)
    assert len(splits.test) == 6
    assert not any("unsup" in t for t in _all_texts(splits))
    assert all(t.startswith(("pos", "neg")) for t in splits.test.texts)


def test_class_tree_with_three_classes(tmp_path):
    root = make_class_tree(tmp_path / "news", {"sport": 10, "arts": 10,
                                               "tech": 10})
    splits = load_splits(DataConfig(source="directory", path=str(root),
                                    test_split=0.2))
    assert splits.class_names == ("arts", "sport", "tech")
    assert (len(splits.train), len(splits.validation),
            len(splits.test)) == (18, 6, 6)
    for part in (splits.train, splits.validation, splits.test):
        for text, label in zip(part.texts, part.labels):
            assert text.startswith(splits.class_names[label])


def test_csv_with_named_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = ["body,stars,extra"] + [
        f'"text {i}, with a comma",{"good" if i % 2 else "bad"},x'
        for i in range(20)]
    write(path, "\n".join(rows) + "\n")
    splits = load_splits(DataConfig(source="csv", path=str(path),
                                    text_column="body", label_column="stars",
                                    test_split=0.2))
    assert splits.class_names == ("bad", "good")
    assert (len(splits.train), len(splits.validation),
            len(splits.test)) == (12, 4, 4)
    assert any(", with a comma" in t for t in splits.train.texts)


def test_csv_numeric_labels_sort_as_numbers(tmp_path):
    path = tmp_path / "n.csv"
    write(path, "text,label\n" + "".join(
        f"t{i},{[2, 10, 9][i % 3]}\n" for i in range(30)))
    splits = load_splits(DataConfig(source="csv", path=str(path)))
    assert splits.class_names == ("2", "9", "10")
    # `1` and `1.0` are one class, as a spreadsheet may write either.
    write(path, "text,label\n" + "".join(
        f"t{i},{['1', '1.0', '0'][i % 3]}\n" for i in range(30)))
    splits = load_splits(DataConfig(source="csv", path=str(path)))
    assert splits.class_names == ("0", "1")


def test_download_is_cached(tmp_path):
    root = make_aclimdb(tmp_path / "src" / "aclImdb")
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    config = DataConfig(source="aclimdb", url=archive.as_uri(),
                        cache_dir=str(tmp_path / "cache"))
    first = load_splits(config)
    assert (len(first.train), len(first.validation),
            len(first.test)) == (16, 4, 6)
    archive.unlink()  # a second load must not download again
    second = load_splits(config)
    assert list(second.train.texts) == list(first.train.texts)


def test_download_failure_is_a_data_error(tmp_path):
    config = DataConfig(source="aclimdb",
                        url=(tmp_path / "missing.tar.gz").as_uri(),
                        cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="download failed"):
        load_splits(config)


def test_bad_inputs_raise_one_line_data_errors(tmp_path):
    for description, config, expected in bad_data_sources(tmp_path):
        with pytest.raises(DataError) as e:
            load_splits(config)
        assert expected in str(e.value), description
        assert "\n" not in str(e.value), description


def test_hidden_files_and_folders_are_ignored_and_counted(tmp_path):
    root = make_class_tree(tmp_path / "texts", {"pos": 3, "neg": 3})
    write(root / ".DS_Store", b"\x00\x01")
    write(root / "pos" / ".hidden.txt", "a hidden text")
    write(root / ".ipynb_checkpoints" / "x.txt", "a checkpoint copy")
    write(root / "neg" / ".ipynb_checkpoints" / "0-checkpoint.txt", "copy")
    splits = load_splits(DataConfig(source="directory", path=str(root),
                                    validation_split=0.5, test_split=0))
    assert splits.class_names == ("neg", "pos")
    assert sorted(_all_texts(splits)) == sorted(
        f"{c} review number {i} with words<br />and more words."
        for c in ("pos", "neg") for i in range(3))
    assert splits.stats["hidden_ignored"] == 4
    assert splits.notes[0].startswith(
        "ignored 4 hidden file(s) or folder(s): ")


@pytest.mark.parametrize("mode", ["replace", "skip"])
def test_decode_errors_replace_or_skip_and_say_so(tmp_path, mode):
    root = make_class_tree(tmp_path / "texts", {"pos": 3, "neg": 3})
    write(root / "neg" / "latin.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    csv_path = tmp_path / "rows.csv"
    write(csv_path, b"text,label\nfine,1\ncaf\xe9,0\n\"two\nlines \xff\",1"
           b"\nok,0\ngood,1\nbad,0\n")
    for config, unit, total in (
            (DataConfig(source="directory", path=str(root), test_split=0,
                        validation_split=0.5, decode_errors=mode),
             "file", 7),
            (DataConfig(source="csv", path=str(csv_path), test_split=0,
                        validation_split=0.5, decode_errors=mode),
             "row", 6)):
        splits = load_splits(config)
        texts = list(_all_texts(splits))
        assert len(texts) == (total if mode == "replace" else total - 2
                              if unit == "row" else total - 1)
        assert splits.stats == {"decode_errors": mode, "hidden_ignored": 0,
                                ("replaced" if mode == "replace"
                                 else "skipped"): 2 if unit == "row" else 1}
        assert f"{unit}(s) that are not UTF-8" in splits.notes[0]
        if mode == "replace":
            assert any("\ufffd" in t for t in texts)
    assert "line 3, line 4" in splits.notes[0]  # where the rows start


def test_csv_lines_count_as_the_reader_counts_them(tmp_path):
    """A byte order mark and old Mac line ends (a lone CR) keep the line
    numbers of undecodable rows right."""
    path = tmp_path / "mixed.csv"
    write(path, codecs.BOM_UTF8 + b'text,label\rfine,1\r"two\rlines",0\r'
           b"caf\xe9,1\rok,0\rgood,1\rbad,0\r")
    with pytest.raises(DataError, match=r"mixed.csv, line 5: not UTF-8"):
        load_splits(DataConfig(source="csv", path=str(path)))
    splits = load_splits(DataConfig(source="csv", path=str(path),
                                    decode_errors="skip", test_split=0,
                                    validation_split=0.5))
    assert "line 5" in splits.notes[0]
    assert sorted(_all_texts(splits)) == ["bad", "fine", "good", "ok",
                                          "two\rlines"]


def test_csv_accepts_a_byte_order_mark_and_blank_lines(tmp_path):
    path = tmp_path / "bom.csv"
    write(path, "\ufefftext,label\nhello there,pos\n\nbye now,neg\n"
           "hi,pos\nbye,neg\n", encoding="utf-8")
    splits = load_splits(DataConfig(source="csv", path=str(path),
                                    test_split=0, validation_split=0.5))
    assert splits.class_names == ("neg", "pos")
    assert sorted(_all_texts(splits)) == ["bye", "bye now", "hello there",
                                          "hi"]
