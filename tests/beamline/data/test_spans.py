"""Span discovery and selection under --data (pure filesystem; TFX's pattern semantics)."""

from __future__ import annotations

import datetime
import os

import pytest

from beamline.data.spans import (
    DEFAULT_SPAN_PATTERN,
    SpanRange,
    fill_span,
    find_spans,
    parse_span_range,
    resolve_input,
)
from beamline.errors import ConfigError, DataError
from beamline.runner import fast_cache


def _span(root, name, rows="1,2\n", file="data.csv"):
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / file).write_text("x,y\n" + rows)
    return d / file


@pytest.fixture
def spans(tmp_path):
    for n in (1, 2, 10):
        _span(tmp_path, f"span-{n}")
    return tmp_path


def test_latest_span_by_default_numeric_not_lexical(spans):
    data = resolve_input(spans)
    assert data.span == 10 and data.pattern == DEFAULT_SPAN_PATTERN
    assert [f.parent.name for f in data.files] == ["span-10"]
    assert data.extra_spans == () and data.span_label == "10"


def test_span_picks_one(spans):
    data = resolve_input(spans, span=2)
    assert data.span == 2 and [f.parent.name for f in data.files] == ["span-2"]


def test_span_range_reads_every_span_in_it_latest_through_tfx(spans):
    data = resolve_input(spans, span_range=SpanRange(1, 5))
    assert data.span == 2 and data.extra_spans == ((1, "span-1/*.csv"),)
    assert [f.parent.name for f in data.files] == ["span-1", "span-2"]
    assert data.span_label == "1-2"


def test_plain_directory_of_csvs_keeps_working(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    data = resolve_input(tmp_path)
    assert data.span is None and data.pattern == "*.csv"


def test_date_spans_are_days_since_epoch_like_tfx(tmp_path):
    pattern = "{YYYY}-{MM}-{DD}/*.csv"
    _span(tmp_path, "2026-11-25")
    _span(tmp_path, "2026-11-26")
    days = (datetime.date(2026, 11, 26) - datetime.date(1970, 1, 1)).days
    assert list(find_spans(tmp_path, pattern)) == [days - 1, days]
    assert resolve_input(tmp_path, pattern).span == days
    assert fill_span(pattern, days) == "2026-11-26/*.csv"


def test_zero_padded_span_width(tmp_path):
    _span(tmp_path, "day-007")
    _span(tmp_path, "day-7")  # not three digits: not a span of this pattern
    assert list(find_spans(tmp_path, "day-{SPAN:3}/*.csv")) == [7]
    assert fill_span("day-{SPAN:3}/*.csv", 7) == "day-007/*.csv"


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"span": 3}, "Span 3 is not in"),
        ({"span_range": SpanRange(3, 9)}, "No span of"),
    ],
)
def test_unknown_spans_name_the_ones_found(spans, kwargs, fragment):
    with pytest.raises(DataError, match=fragment) as info:
        resolve_input(spans, **kwargs)
    assert "1, 2, 10" in str(info.value) and info.value.exit_code == 3


def test_empty_latest_span_directory_is_an_error_not_an_older_span(spans):
    (spans / "span-11").mkdir()
    with pytest.raises(DataError, match="Span 11 .* holds no file") as info:
        resolve_input(spans)
    assert "span-11" in str(info.value)


def test_span_flag_on_a_directory_without_spans(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(DataError, match="matches nothing"):
        resolve_input(tmp_path, span=1)


def test_spans_in_a_range_must_share_a_header(spans):
    (spans / "span-2" / "data.csv").write_text("x,z\n1,2\n")
    with pytest.raises(DataError, match="disagree on columns"):
        resolve_input(spans, span_range=SpanRange(1, 2))


@pytest.mark.parametrize("text", ["3", "a:b", "5:2", ""])
def test_bad_span_range_syntax(text):
    with pytest.raises(ConfigError):
        parse_span_range(text)


def test_span_and_span_range_exclude_each_other(spans):
    with pytest.raises(ConfigError, match="not both"):
        resolve_input(spans, span=1, span_range=SpanRange(1, 2))


def test_fast_cache_fingerprint_sees_a_new_span(spans, tmp_path):
    project = tmp_path / "project"
    for f in fast_cache.FRAMEWORK_FILES:
        (project / f).parent.mkdir(parents=True, exist_ok=True)
        (project / f).write_text("")
    def digest():
        return fast_cache.fingerprint("p", resolve_input(spans), [], {}, project)

    before = digest()
    assert before == digest()
    # Same file name, size and time in a new span directory: still different data.
    new = _span(spans, "span-11")
    old = spans / "span-10" / "data.csv"
    os.utime(new, ns=(old.stat().st_atime_ns, old.stat().st_mtime_ns))
    assert digest() != before
