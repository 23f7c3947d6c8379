"""Hand-written tf.Example bytes equal protobuf's deterministic serialization, byte for byte.

ExampleGen hashes these bytes to pick each row's split, so any difference would move rows
between train and eval; TFDV and Transform parse them. The reference is tf.train.Example built
the way the executor used to build it.
"""

from __future__ import annotations

import math

import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from beamline_components.csv_example_gen.example_bytes import BYTES, FLOAT, INT, row_encoder
from tests.hypothesis_budget import examples


def reference(cells, columns) -> bytes:
    feature = {}
    for cell, (name, kind) in zip(cells, columns, strict=True):
        if not cell:
            continue
        if kind == INT:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(cell)]))
        elif kind == FLOAT:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(cell)]))
        else:
            feature[name] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[cell.encode("utf-8")])
            )
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


names = st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str)
floats = st.one_of(
    st.floats(allow_nan=False, width=64).map(repr),
    st.sampled_from(["3.4028235e38", "3.4028236e38", "-1e39", "1e-46", "inf", "-inf", "0.1",
                     "-0.0", "1e308", " 2.5 ", "7"]),
)
texts = st.text(max_size=300)


@st.composite
def tables(draw):
    columns = draw(st.lists(st.tuples(names, st.sampled_from([INT, FLOAT, BYTES])),
                            min_size=1, max_size=20, unique_by=lambda c: c[0]))
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        row = []
        for _, kind in columns:
            cell = draw({INT: ints, FLOAT: floats, BYTES: texts}[kind])
            row.append("" if draw(st.booleans()) and draw(st.booleans()) else cell)
        rows.append(row)
    return columns, rows


@settings(max_examples=examples(300), deadline=None)
@given(tables())
def test_rows_serialize_exactly_as_protobuf_does(table):
    columns, rows = table
    encode = row_encoder(columns)
    for row in rows:
        assert encode(row) == reference(row, columns)


def test_a_row_of_missing_cells_is_an_example_with_no_features():
    columns = [("a", INT), ("b", BYTES)]
    assert row_encoder(columns)(["", ""]) == reference(["", ""], columns) == b"\x0a\x00"


def test_nan_and_long_values_round_trip_through_tensorflow():
    columns = [("x", FLOAT), ("s", BYTES), ("n", INT)]
    raw = row_encoder(columns)(["nan", "é" * 200, "-9223372036854775808"])
    example = tf.train.Example.FromString(raw)
    assert math.isnan(example.features.feature["x"].float_list.value[0])
    assert example.features.feature["s"].bytes_list.value[0] == ("é" * 200).encode()
    assert example.features.feature["n"].int64_list.value[0] == -(2**63)
