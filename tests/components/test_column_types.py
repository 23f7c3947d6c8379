"""Beamline's column type inference gives tfx_bsl's ColumnTypeInferrer's answer on any table."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st
from tfx_bsl.coders import csv_decoder

from beamline_components.csv_example_gen.column_types import ColumnTypes
from tests.hypothesis_budget import examples

cells = st.one_of(
    st.just(""),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(repr),
    st.sampled_from(["1_000", " 12 ", "+5", "1e5", "nan", "inf", "0x10", "٣", "NA", "1.", ".5"]),
    st.text(max_size=8),
)


@st.composite
def tables(draw):
    width = draw(st.integers(1, 6))
    names = [f"c{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width), max_size=12))
    return names, rows


def _infer(combiner, names, parts):
    accumulators = []
    for part in parts:
        acc = combiner.create_accumulator()
        for row in part:
            acc = combiner.add_input(acc, row)
        accumulators.append(acc)
    return combiner.extract_output(combiner.merge_accumulators(accumulators))


@settings(max_examples=examples(400), deadline=None)
@given(tables(), st.integers(1, 3))
def test_types_match_tfx_bsl_whatever_the_rows_and_partitions(table, parts):
    names, rows = table
    split = [rows[i::parts] for i in range(parts)]
    ours = ColumnTypes(names)
    theirs = csv_decoder.ColumnTypeInferrer(names, skip_blank_lines=True)
    assert _infer(ours, names, split) == _infer(theirs, names, split)
    # A second table through the same (memoizing) instance is not affected by the first.
    assert _infer(ours, names, [rows[::-1]]) == _infer(theirs, names, [rows[::-1]])


def test_the_memo_is_not_shipped_to_workers():
    combiner = ColumnTypes(["a"])
    combiner.add_input(combiner.create_accumulator(), ["12"])
    assert pickle.loads(pickle.dumps(combiner))._seen == {}  # noqa: SLF001
