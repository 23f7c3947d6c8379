import re

import pytest

from beamline.data.files import resolve_data, stock_input
from beamline.errors import ConfigError, DataError


def test_directory_of_csvs(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,y\n3,4\n")
    data = resolve_data(tmp_path)
    assert data.pattern == "*.csv" and len(data.files) == 2 and data.total_bytes > 0


def test_single_file_becomes_its_directory_and_name(tmp_path):
    (tmp_path / "only.csv").write_text("x\n1\n")
    data = resolve_data(tmp_path / "only.csv")
    assert data.root == tmp_path.resolve() and data.pattern == "only.csv"


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda d: None, "holds no *.csv, *.tfrecord(.gz) or *.parquet files"),
        (lambda d: (d / "e.csv").write_text(""), "empty or has no header"),
        (lambda d: (d / "h.csv").write_text("x,y\n"), "no data rows"),
        (
            lambda d: ((d / "a.csv").write_text("x\n1\n"), (d / "b.csv").write_text("y\n1\n")),
            "disagree on columns",
        ),
    ],
)
def test_bad_data_directories_name_the_problem(tmp_path, setup, fragment):
    setup(tmp_path)
    with pytest.raises(DataError, match=re.escape(fragment)) as info:
        resolve_data(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)


@pytest.mark.parametrize("first_row", ["1,2.5,x", "-3,.5,y", "a,1e-3,b", "x,2019"])
def test_a_csv_whose_first_row_holds_a_number_has_no_header(tmp_path, first_row):
    (tmp_path / "d.csv").write_text(f"{first_row}\n4,5,z\n")
    with pytest.raises(DataError, match="has no header row") as info:
        resolve_data(tmp_path / "d.csv")
    assert str((tmp_path / "d.csv").resolve()) in str(info.value)


@pytest.mark.parametrize("header", ["x1,y_2,label", "e,nan,inf", "1st,2.5cm,z"])
def test_names_with_digits_that_are_not_numbers_are_a_header(tmp_path, header):
    (tmp_path / "d.csv").write_text(f"{header}\n4,5,z\n")
    assert resolve_data(tmp_path / "d.csv").files


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        resolve_data(tmp_path / "nope")


def test_tfrecord_and_parquet_directories_are_recognised(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "part-0.tfrecord.gz").write_bytes(b"\x1f\x8b not checked further")
    data = resolve_data(tmp_path / "tf")
    assert (data.format, data.pattern) == ("tfrecord", "*.tfrecord.gz")
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "pq" / "a.parquet")
    data = resolve_data(tmp_path / "pq")
    assert (data.format, data.pattern, len(data.files)) == ("parquet", "*.parquet", 1)


def test_parquet_files_must_share_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"y": [1]}), tmp_path / "b.parquet")
    with pytest.raises(DataError, match="Parquet files disagree on columns"):
        resolve_data(tmp_path)
    (tmp_path / "b.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="b.parquet cannot be read"):
        resolve_data(tmp_path)


def test_tfrecord_spans_follow_the_csv_span_pattern(tmp_path):
    from beamline.data.spans import resolve_input

    for span in (1, 2):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "data.tfrecord").write_bytes(b"x")
    data = resolve_input(tmp_path)
    assert (data.format, data.pattern, data.span) == ("tfrecord", "span-{SPAN}/*.tfrecord", 2)


def test_a_stock_pipelines_input_takes_any_files_but_hidden_ones_and_run_roots(tmp_path):
    (tmp_path / "part-0.avro").write_bytes(b"x")
    for ignored in (".cache/a", "beamline_runs/metadata.sqlite", "__pycache__/m.pyc"):
        (tmp_path / ignored).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ignored).write_bytes(b"x")
    data = stock_input(tmp_path)
    assert data.files == ((tmp_path / "part-0.avro").resolve(),) and data.pattern == "*"


def test_a_stock_pipeline_refuses_span_selection(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(ConfigError, match="stock TFX pipeline configures its ExampleGen"):
        stock_input(tmp_path, span=1)
