"""Data sources: embedded, directory (aclImdb too), CSV, download; errors."""

import codecs
import tarfile

import numpy as np
import pytest

from data_pipeline.config import DataConfig
from data_pipeline.sources import DataError, load_splits


def _write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)


def make_class_tree(root, counts: dict[str, int]):
    for name, n in counts.items():
        for i in range(n):
            _write(root / name / f"{i}.txt", f"{name} review number {i} "
                   "with words<br />and more words.")
    return root


def make_aclimdb(root, per_class=10):
    make_class_tree(root / "train", {"pos": per_class, "neg": per_class,
                                     "unsup": 7})
    make_class_tree(root / "test", {"pos": 3, "neg": 3})
    _write(root / "imdb.vocab", "the\nand\n")
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
    _write(path, "\n".join(rows) + "\n")
    splits = load_splits(DataConfig(source="csv", path=str(path),
                                    text_column="body", label_column="stars",
                                    test_split=0.2))
    assert splits.class_names == ("bad", "good")
    assert (len(splits.train), len(splits.validation),
            len(splits.test)) == (12, 4, 4)
    assert any(", with a comma" in t for t in splits.train.texts)


def test_csv_numeric_labels_sort_as_numbers(tmp_path):
    path = tmp_path / "n.csv"
    _write(path, "text,label\n" + "".join(
        f"t{i},{[2, 10, 9][i % 3]}\n" for i in range(30)))
    splits = load_splits(DataConfig(source="csv", path=str(path)))
    assert splits.class_names == ("2", "9", "10")


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


def _bad_inputs(tmp_path):
    """(description, DataConfig, text expected in the message)."""
    empty = tmp_path / "empty"
    empty.mkdir(parents=True)
    no_files = make_class_tree(tmp_path / "nofiles", {"pos": 2})
    (no_files / "neg").mkdir()
    single = make_class_tree(tmp_path / "single", {"pos": 3})
    latin = make_class_tree(tmp_path / "latin", {"pos": 2, "neg": 2})
    _write(latin / "neg" / "bad.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    blank = make_class_tree(tmp_path / "blank", {"pos": 2, "neg": 2})
    _write(blank / "pos" / "blank.txt", "  \n")
    csv_path = tmp_path / "cols.csv"
    _write(csv_path, "review,label\nhello,1\n")
    one_label = tmp_path / "one.csv"
    _write(one_label, "text,label\na,1\nb,1\n")
    as_file = tmp_path / "file.txt"
    _write(as_file, "x")
    links = {}
    for kind in ("loop", "dangling", "folder"):
        tree = make_class_tree(tmp_path / kind, {"pos": 2, "neg": 2})
        links[kind] = tree
    (links["loop"] / "pos" / "loop.txt").symlink_to("loop.txt")
    (links["dangling"] / "pos" / "gone.txt").symlink_to(tmp_path / "gone")
    (links["folder"] / "pos" / "notes.txt").mkdir()
    nan_label = tmp_path / "nan.csv"
    _write(nan_label, 'text,label\n"a\nlong one",1\nb,NaN\nc,0\n')
    twice = tmp_path / "twice.csv"
    _write(twice, "text,label,text\na,1,x\nb,0,y\n")
    joined = tmp_path / "joined.csv"
    _write(joined, "text,label\na,1\nb,0\ntext,label\nc,1\n")
    latin_csv = tmp_path / "latin.csv"
    _write(latin_csv, "text,label\nfine,1\ncaf\xe9,0\n".encode("latin-1"))
    return [
        ("symlink loop", DataConfig(source="directory",
                                    path=str(links["loop"])),
         "loop.txt: cannot be read: a symbolic link loop"),
        ("dangling link", DataConfig(source="directory",
                                     path=str(links["dangling"])),
         "gone.txt: cannot be read: a dangling symbolic link"),
        ("folder named .txt", DataConfig(source="directory",
                                         path=str(links["folder"])),
         "notes.txt: cannot be read: a directory, not a text file"),
        ("csv NaN label", DataConfig(source="csv", path=str(nan_label)),
         "nan.csv, line 4: missing label ('NaN') in column 'label'"),
        ("csv column twice", DataConfig(source="csv", path=str(twice)),
         "twice.csv, line 1: the header names column 'text' twice"),
        ("csv header again", DataConfig(source="csv", path=str(joined)),
         "joined.csv, line 4: repeats the header"),
        ("csv not utf-8", DataConfig(source="csv", path=str(latin_csv)),
         "latin.csv, line 3: not UTF-8 text"),
        ("csv on a directory", DataConfig(source="csv",
                                          path=str(links["loop"])),
         "a directory, not a CSV file; use data.source=directory"),
        ("missing", DataConfig(source="directory",
                               path=str(tmp_path / "nope")),
         "nope: no such directory"),
        ("empty", DataConfig(source="directory", path=str(empty)),
         "empty: no class folders"),
        ("no files", DataConfig(source="directory", path=str(no_files)),
         "neg: class folder has no .txt files"),
        ("single class", DataConfig(source="directory", path=str(single)),
         "only one class folder (pos)"),
        ("not utf-8", DataConfig(source="directory", path=str(latin)),
         "bad.txt: not UTF-8 text"),
        ("empty text", DataConfig(source="directory", path=str(blank)),
         "blank.txt: empty text"),
        ("csv columns", DataConfig(source="csv", path=str(csv_path)),
         "no column 'text'; columns are 'review', 'label'"),
        ("csv one label", DataConfig(source="csv", path=str(one_label)),
         "has 1 distinct label(s)"),
        ("csv missing", DataConfig(source="csv",
                                   path=str(tmp_path / "no.csv")),
         "no.csv: no such file"),
        ("file as dir", DataConfig(source="directory", path=str(as_file)),
         "not a directory"),
    ]


def test_bad_inputs_raise_one_line_data_errors(tmp_path):
    for description, config, expected in _bad_inputs(tmp_path):
        with pytest.raises(DataError) as e:
            load_splits(config)
        assert expected in str(e.value), description
        assert "\n" not in str(e.value), description


def test_hidden_files_and_folders_are_ignored_and_counted(tmp_path):
    root = make_class_tree(tmp_path / "texts", {"pos": 3, "neg": 3})
    _write(root / ".DS_Store", b"\x00\x01")
    _write(root / "pos" / ".hidden.txt", "a hidden text")
    _write(root / ".ipynb_checkpoints" / "x.txt", "a checkpoint copy")
    _write(root / "neg" / ".ipynb_checkpoints" / "0-checkpoint.txt", "copy")
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
    _write(root / "neg" / "latin.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    csv_path = tmp_path / "rows.csv"
    _write(csv_path, b"text,label\nfine,1\ncaf\xe9,0\n\"two\nlines \xff\",1"
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
    _write(path, codecs.BOM_UTF8 + b'text,label\rfine,1\r"two\rlines",0\r'
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
    _write(path, "\ufefftext,label\nhello there,pos\n\nbye now,neg\n"
           "hi,pos\nbye,neg\n", encoding="utf-8")
    splits = load_splits(DataConfig(source="csv", path=str(path),
                                    test_split=0, validation_split=0.5))
    assert splits.class_names == ("neg", "pos")
    assert sorted(_all_texts(splits)) == ["bye", "bye now", "hello there",
                                          "hi"]
