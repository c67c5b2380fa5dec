"""Numeric series files as users bring them: what each reader returns, and
the one-line error naming the file and line of each malformed input."""

import numpy as np
import pytest

from data_pipeline.config import DataError
from data_pipeline.series import embedded_series, read_series

TS_HEADER = """# a comment
@problemName Tiny
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ts_ragged_multivariate_series_keep_their_lengths(tmp_path):
    path = _write(tmp_path, "tiny.ts", TS_HEADER + (
        "1,2,3:4,5,6:up\n"
        "0,0:7,8:down\n"
        "\n"
        "9:10:up\n"))
    found = read_series(path)
    assert found.task == "classification"
    assert found.class_names == ("up", "down")
    assert list(found.labels) == ["up", "down", "up"]
    assert [s.shape for s in found.series] == [(3, 2), (2, 2), (1, 2)]
    assert found.series[0][:, 1].tolist() == [4, 5, 6]  # channel 2
    values, lengths = found.padded()
    assert values.shape == (3, 3, 2) and values.dtype == np.float32
    assert lengths.tolist() == [3, 2, 1]
    # A real zero stays a value: the lengths, not zeros, mark the padding.
    assert values[1, :2, 0].tolist() == [0, 0]
    cut, cut_lengths = found.padded(2)
    assert cut.shape == (3, 2, 2) and cut_lengths.tolist() == [2, 2, 1]


def test_ts_regression_targets(tmp_path):
    path = _write(tmp_path, "reg.ts", "@problemName R\n@univariate true\n"
                  "@targetLabel true\n@data\n1,2,3:0.5\n4,5,6:-2\n")
    found = read_series(path, task="regression")
    assert found.task == "regression" and found.labels is None
    assert found.targets.tolist() == [0.5, -2.0]
    assert found.channels == 1


@pytest.mark.parametrize("body, message", [
    ("1,2,3:4,5,6:up\n1,x,3:4,5,6:down\n", r"tiny\.ts:9: 'x' is not a number"),
    ("1,2,3:4,5,6:sideways\n",
     r"tiny\.ts:8: class 'sideways' is not among the header's @classLabel "
     r"\(up down\)"),
    ("1,2,3:up\n", r"tiny\.ts:8: 1 channels; the header says @dimensions 2"),
    ("1,2,3:4,5:up\n", r"tiny\.ts:8: channels of different lengths"),
    ("1,?,3:4,5,6:up\n", r"tiny\.ts:8: a missing value \('\?'\)"),
    ("", r"tiny\.ts: holds no series"),
])
def test_ts_errors_name_the_file_and_line(tmp_path, body, message):
    path = _write(tmp_path, "tiny.ts", TS_HEADER + body)
    with pytest.raises(DataError, match=message):
        read_series(path)


def test_ts_without_a_header_or_label_kind_says_so(tmp_path):
    with pytest.raises(DataError, match=r"no\.ts:1: expected a header line"):
        read_series(_write(tmp_path, "no.ts", "1,2,3:up\n"))
    with pytest.raises(DataError, match="neither @classLabel true nor "
                       "@targetLabel true"):
        read_series(_write(tmp_path, "none.ts", "@univariate true\n@data\n"))
    with pytest.raises(DataError, match="a classification file .*data.task "
                       "is regression"):
        read_series(_write(tmp_path, "t.ts", TS_HEADER + "1:2:up\n"),
                    task="regression")


def test_npz_time_major_channels_first_and_lengths(tmp_path):
    x = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3)
    np.savez(tmp_path / "a.npz", X=x, y=np.array([1, 0]),
             lengths=np.array([4, 2]))
    found = read_series(tmp_path / "a.npz", task="classification")
    assert [s.shape for s in found.series] == [(4, 3), (2, 3)]
    assert found.series[1].tolist() == x[1, :2].tolist()
    assert found.class_names == ("0", "1")
    np.savez(tmp_path / "b.npz", X=x.transpose(0, 2, 1), y=[0.5, 1.5])
    found = read_series(tmp_path / "b.npz", task="regression",
                        channels_first=True)
    assert found.series[0].tolist() == x[0].tolist()
    assert found.targets.tolist() == [0.5, 1.5]
    (tmp_path / "text.npz").write_text("X,y\n1,2\n")
    with pytest.raises(DataError, match=r"text\.npz: not an \.npz archive "
                       r"\(what numpy\.savez writes"):
        read_series(tmp_path / "text.npz", task="classification")
    np.savez(tmp_path / "c.npz", X=x)
    with pytest.raises(DataError, match=r"c\.npz: no 'y' array"):
        read_series(tmp_path / "c.npz", task="classification")
    np.savez(tmp_path / "d.npz", X=x, y=[1, 2, 3])
    with pytest.raises(DataError, match=r"y has shape \[3\]; expected "
                       r"\(2,\)"):
        read_series(tmp_path / "d.npz", task="classification")
    np.savez(tmp_path / "e.npz", X=x, y=["a", "b"])
    with pytest.raises(DataError, match=r"a regression target is not a "
                       r"number \('a'\)"):
        read_series(tmp_path / "e.npz", task="regression")
    with pytest.raises(DataError, match="data.task must be classification "
                       "or regression"):
        read_series(tmp_path / "a.npz")


def test_wide_csv_one_series_per_row_ragged_at_the_end(tmp_path):
    path = _write(tmp_path, "wide.csv", "label,t0,t1,t2\n"
                  "yes,1,2,3\n"
                  "no,4,5,\n")
    found = read_series(path, task="classification")
    assert [s[:, 0].tolist() for s in found.series] == [[1, 2, 3], [4, 5]]
    assert list(found.labels) == ["yes", "no"]
    path = _write(tmp_path, "hole.csv", "label,t0,t1,t2\nyes,1,,3\n"
                  "no,1,2,3\n")
    with pytest.raises(DataError, match=r"hole\.csv:2: an empty cell inside"):
        read_series(path, task="classification")
    with pytest.raises(DataError, match=r"no column 'class' "
                       r"\(data.label_column\); the header has label, t0"):
        read_series(path, task="classification", label_column="class")


def test_long_csv_orders_each_series_by_time(tmp_path):
    path = _write(tmp_path, "long.csv", "id,time,x,y,label\n"
                  "a,2,20,200,up\n"
                  "b,1,5,50,down\n"
                  "a,1,10,100,up\n"
                  "a,3,30,300,up\n")
    found = read_series(path, task="classification",
                        value_columns=["x", "y"])
    assert [s.tolist() for s in found.series] == [
        [[10, 100], [20, 200], [30, 300]], [[5, 50]]]
    assert list(found.labels) == ["up", "down"]
    bad = _write(tmp_path, "twice.csv", "id,time,x,label\n"
                 "a,1,1,up\na,1,2,up\nb,1,1,down\n")
    with pytest.raises(DataError, match=r"twice\.csv:3: series 'a' has time "
                       r"1\.0 twice \(also line 2\)"):
        read_series(bad, task="classification", value_columns=["x"])
    bad = _write(tmp_path, "relabel.csv", "id,time,x,label\n"
                 "a,1,1,up\na,2,2,down\nb,1,1,down\n")
    with pytest.raises(DataError, match=r"relabel\.csv:3: series 'a' has "
                       r"label 'down' here and 'up' on line 2"):
        read_series(bad, task="classification", value_columns=["x"])


def test_the_embedded_sets_as_the_archive_describes_them():
    train, test = (read_series(p) for p in embedded_series("japanese_vowels"))
    assert (len(train), len(test)) == (270, 370)
    assert train.channels == 12 and len(train.class_names) == 9
    both = np.concatenate([train.lengths, test.lengths])
    assert (both.min(), both.max()) == (7, 29)  # ragged, not resampled
    train, test = (read_series(p) for p in embedded_series("basic_motions"))
    assert (len(train), len(test), train.channels) == (40, 40, 6)
    assert set(train.lengths) == {100} and len(train.class_names) == 4
    train, test = (read_series(p) for p in embedded_series("covid_3_month"))
    assert train.task == "regression" and (len(train), len(test)) == (
        140, 61)
    with pytest.raises(DataError, match="no embedded series set 'ecg'"):
        embedded_series("ecg")


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    ts = tmp_path / "latin.ts"
    ts.write_bytes(TS_HEADER.encode() + b"1,2:3,4:up\n\xe9,2:3,4:down\n")
    with pytest.raises(DataError, match=r"latin\.ts:9: not UTF-8 text"):
        read_series(ts)
    wide = tmp_path / "latin.csv"
    wide.write_bytes(b"label,t0\nyes,1\nno,\xe9\n")
    with pytest.raises(DataError, match=r"latin\.csv:3: not UTF-8 text"):
        read_series(wide, task="classification")
