"""Text data the tests build on disk: class folders of reviews and the
damaged data sets every loader must reject in one line."""

from data_pipeline.config import DataConfig


def write(path, text, encoding="utf-8"):
    """Writes `text` (str or bytes) to `path`, making its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)


def make_class_tree(root, counts: dict[str, int]):
    """`root/CLASS/N.txt` reviews, `counts[CLASS]` of each; returns root."""
    for name, n in counts.items():
        for i in range(n):
            write(root / name / f"{i}.txt", f"{name} review number {i} "
                  "with words<br />and more words.")
    return root


def bad_data_sources(tmp_path):
    """(description, DataConfig, text expected in the message)."""
    empty = tmp_path / "empty"
    empty.mkdir(parents=True)
    no_files = make_class_tree(tmp_path / "nofiles", {"pos": 2})
    (no_files / "neg").mkdir()
    single = make_class_tree(tmp_path / "single", {"pos": 3})
    latin = make_class_tree(tmp_path / "latin", {"pos": 2, "neg": 2})
    write(latin / "neg" / "bad.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    blank = make_class_tree(tmp_path / "blank", {"pos": 2, "neg": 2})
    write(blank / "pos" / "blank.txt", "  \n")
    csv_path = tmp_path / "cols.csv"
    write(csv_path, "review,label\nhello,1\n")
    one_label = tmp_path / "one.csv"
    write(one_label, "text,label\na,1\nb,1\n")
    as_file = tmp_path / "file.txt"
    write(as_file, "x")
    links = {}
    for kind in ("loop", "dangling", "folder"):
        tree = make_class_tree(tmp_path / kind, {"pos": 2, "neg": 2})
        links[kind] = tree
    (links["loop"] / "pos" / "loop.txt").symlink_to("loop.txt")
    (links["dangling"] / "pos" / "gone.txt").symlink_to(tmp_path / "gone")
    (links["folder"] / "pos" / "notes.txt").mkdir()
    nan_label = tmp_path / "nan.csv"
    write(nan_label, 'text,label\n"a\nlong one",1\nb,NaN\nc,0\n')
    twice = tmp_path / "twice.csv"
    write(twice, "text,label,text\na,1,x\nb,0,y\n")
    joined = tmp_path / "joined.csv"
    write(joined, "text,label\na,1\nb,0\ntext,label\nc,1\n")
    latin_csv = tmp_path / "latin.csv"
    write(latin_csv, "text,label\nfine,1\ncaf\xe9,0\n".encode("latin-1"))
    extra = tmp_path / "extra.csv"
    write(extra, "text,label\na,1\nb, really,0\n")
    unclosed = tmp_path / "unclosed.csv"
    write(unclosed, 'text,label\na,1\n"b is open,0\nc,1\nd,0\n')
    half = make_class_tree(tmp_path / "half" / "train", {"pos": 2, "neg": 2}
                           ).parent
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
        ("csv extra field", DataConfig(source="csv", path=str(extra)),
         "extra.csv, line 3: 3 fields where the header names 2; quote a "
         "text that holds a comma"),
        ("csv unclosed quote", DataConfig(source="csv", path=str(unclosed)),
         "unclosed.csv, line 3: a quoted field opened here runs to line 5"),
        ("aclImdb without test", DataConfig(source="directory",
                                            path=str(half)),
         "half: has train/ but no test/"),
    ]
