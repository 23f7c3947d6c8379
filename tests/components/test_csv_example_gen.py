"""CSV reading: dialects real tools write read as the same data; missing cells are absent keys."""

from __future__ import annotations

import io
import json

import apache_beam as beam
import pytest
import tensorflow as tf

from beamline_components.csv_example_gen import csv_format, executor

NULLS = frozenset({"NA", "null"})
PLAIN = b'name,size,note\nadelie,3,"small, grey"\ngentoo,NA,"two\nlines"\nchinstrap,5,\n'


def _rows(data: bytes, width: int = 3) -> list[list[str]]:
    return list(csv_format.data_rows(io.BytesIO(data), "test.csv", width, NULLS))


def _spreadsheet_copy(data: bytes) -> bytes:
    """The same table as a spreadsheet saves it: BOM, CRLF, a trailing blank line."""
    return b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n") + b"\r\n"


def test_header_drops_the_byte_order_mark_and_spaces():
    assert csv_format.header(io.BytesIO(b"\xef\xbb\xbfspecies , island\r\n"), "f") == [
        "species",
        "island",
    ]


def test_quoted_commas_and_line_breaks_stay_in_one_cell():
    assert _rows(PLAIN) == [
        ["adelie", "3", "small, grey"],
        ["gentoo", "", "two\nlines"],
        ["chinstrap", "5", ""],
    ]


def test_bom_crlf_and_trailing_blank_lines_read_as_the_same_rows():
    rows = _rows(_spreadsheet_copy(PLAIN))
    # A line break inside quotes keeps the file's own line ending: that is the cell's content.
    assert rows[1][2] == "two\r\nlines"
    rows[1][2] = "two\nlines"
    assert rows == _rows(PLAIN)


def test_blank_lines_and_all_empty_rows_are_not_examples():
    assert _rows(b"a,b\n\n1,2\n,\n  ,\n\n3,4\n\n\n", 2) == [["1", "2"], ["3", "4"]]


def test_null_tokens_and_empty_cells_are_missing():
    assert _rows(b"a,b,c\nNA, null ,x\n,,y\n") == [["", "", "x"], ["", "", "y"]]


def test_a_row_with_the_wrong_number_of_cells_names_file_and_line():
    with pytest.raises(csv_format.CsvFormatError, match=r"test.csv line 4 has 2 cells .* 3 col"):
        _rows(b'a,b,c\n1,"x\ny",3\n4,5\n')


def test_non_utf8_text_names_file_and_line():
    with pytest.raises(csv_format.CsvFormatError, match="test.csv line 2 is not UTF-8"):
        _rows(b"a,b,c\n1,caf\xe9,2\n")


def test_unterminated_quote_is_a_format_error():
    with pytest.raises(csv_format.CsvFormatError, match="test.csv line"):
        list(csv_format.records(io.BytesIO(b'a,b\n1,"open\n'), "test.csv"))


def _examples(tmp_path, files: dict[str, bytes], pattern="*.csv", config=None):
    """Runs the executor's PTransform on Beam over `files` and reads back its examples."""
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    props = {"input_base": str(tmp_path)}
    if config:
        props["custom_config"] = json.dumps({"customConfig": {"value": config}})
    out = str(tmp_path / "examples")
    with beam.Pipeline() as p:
        _ = (
            p
            | executor._CsvToExampleWithNulls(props, pattern)  # noqa: SLF001
            | beam.io.WriteToTFRecord(out)  # serialized tf.Examples, as ExampleGen writes them
        )
    records = tf.data.TFRecordDataset(sorted(str(f) for f in tmp_path.glob("examples*")))
    return sorted((tf.train.Example.FromString(r.numpy()) for r in records), key=str)


def test_missing_cells_are_absent_keys_and_gaps_keep_numeric_types(tmp_path):
    [ad, ch, ge] = _examples(tmp_path, {"t.csv": PLAIN})
    assert ge.features.feature["name"].bytes_list.value == [b"gentoo"]
    assert "size" not in ge.features.feature  # "NA": absent, not an empty list
    assert ad.features.feature["size"].int64_list.value == [3]  # still INT despite the gap
    assert "note" not in ch.features.feature
    assert ad.features.feature["note"].bytes_list.value == [b"small, grey"]


def test_spreadsheet_export_gives_the_same_examples(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = _examples(tmp_path / "a", {"t.csv": PLAIN})
    exported = _examples(tmp_path / "b", {"t.csv": _spreadsheet_copy(PLAIN)})
    # Only the quoted line break differs (CRLF inside the cell, as the file holds it).
    for example in exported:
        note = example.features.feature.get("note")
        if note is not None:
            note.bytes_list.value[0] = note.bytes_list.value[0].replace(b"\r\n", b"\n")
    assert exported == plain


def test_extra_span_patterns_are_read_with_the_resolved_span(tmp_path):
    """--span-range: TFX resolves the last span; the executor adds the earlier spans' files."""
    files = {"span-1/a.csv": b"name,size\nold,1\n", "span-2/a.csv": b"name,size\nnew,2\n"}
    examples = _examples(
        tmp_path, files, "span-2/*.csv", {"extra_span_patterns": ["span-1/*.csv"]}
    )
    names = sorted(e.features.feature["name"].bytes_list.value[0] for e in examples)
    assert names == [b"new", b"old"]


def _run_without_driver(tmp_path, files: dict[str, bytes], pattern: str, range_config=None):
    """Runs the whole executor as Kubeflow Pipelines starts it: no driver ran, so there is no
    `span` property and the pattern is unresolved. Returns (Examples artifact, names read)."""
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from beamline_components.csv_example_gen import driverless

    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    props = {
        "input_base": str(tmp_path),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)]
        )),
        "output_config": proto_utils.proto_to_json(utils.make_default_output_config(
            example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="s", pattern="x")])
        )),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    if range_config is not None:
        props["range_config"] = proto_utils.proto_to_json(range_config)
    assert not driverless.driver_ran(props)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    executor.Executor().Do({}, {"examples": [examples]}, props)
    records = tf.data.TFRecordDataset(
        sorted(str(f) for f in (tmp_path / "out").glob("Split-*/*.gz")), compression_type="GZIP"
    )
    names = {tf.train.Example.FromString(r.numpy()).features.feature["name"].bytes_list.value[0]
             for r in records}
    return examples, names


SPANS = {
    "span-1/a.csv": b"name,size\nold,1\nolder,2\n",
    "span-2/a.csv": b"name,size\nnew,2\nnewer,3\nnewest,4\n",
}


def test_without_a_driver_the_executor_reads_the_newest_span_and_records_it(tmp_path):
    examples, names = _run_without_driver(tmp_path, SPANS, "span-{SPAN}/*.csv")
    assert names == {b"new", b"newer", b"newest"}
    assert examples.get_int_custom_property("span") == 2
    # TFX's fingerprint of the span's files: span 2's one file of 33 bytes.
    fingerprint = examples.get_string_custom_property("input_fingerprint")
    assert "num_files:1,total_bytes:33," in fingerprint


def test_without_a_driver_a_pinned_span_is_read(tmp_path):
    from tfx.proto import range_config_pb2

    pinned = range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=1, end_span_number=1)
    )
    examples, names = _run_without_driver(tmp_path, SPANS, "span-{SPAN}/*.csv", pinned)
    assert names == {b"old", b"older"}
    assert examples.get_int_custom_property("span") == 1


def test_a_span_the_driver_resolved_is_left_alone():
    from beamline_components.csv_example_gen import driverless

    props = {"span": 3, "input_config": '{"splits": [{"pattern": "span-3/*.csv"}]}'}
    assert driverless.driver_ran(props)
