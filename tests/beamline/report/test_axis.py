"""Chart axes (beamline.report.axis): round ticks that never pass a bounded metric's bound, and
time labels that never overlap, for any values and any run times."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from beamline.metrics import value_range
from beamline.report import axis
from beamline.report.svg import Point, Series, line_chart_svg
from tests.hypothesis_budget import examples

FRACTIONS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
ANY_VALUES = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
# Run times from 2001 to 2100, in ms; bursts of runs seconds apart as well as runs years apart.
TIMES = st.lists(
    st.floats(min_value=1e12, max_value=4.1e12, allow_nan=False), min_size=1, max_size=40
)
BURSTS = st.tuples(
    st.floats(min_value=1e12, max_value=4.1e12, allow_nan=False),
    st.lists(st.integers(min_value=0, max_value=90_000), min_size=1, max_size=20),
).map(lambda start_offsets: [start_offsets[0] + o for o in start_offsets[1]])
OFFSETS = st.integers(min_value=-12 * 3600, max_value=14 * 3600).map(lambda s: s * 1000)


def is_round(value: float, step: float) -> bool:
    """`value` is a whole multiple of `step`, and `step` is 1, 2, 2.5 or 5 times 10^k."""
    power = 10 ** math.floor(math.log10(step))
    mantissa = step / power
    assert any(math.isclose(mantissa, m, rel_tol=1e-9) for m in (1, 2, 2.5, 5, 10)), step
    ratio = value / step
    return math.isclose(ratio, round(ratio), abs_tol=1e-6)


def check_value_axis(values, bounds, result: axis.ValueAxis) -> None:
    slack = 1e-9 * (result.high - result.low)  # floating-point noise, not a pixel
    assert result.low - slack <= min(values) and max(values) <= result.high + slack
    assert len(result.ticks) >= 2
    step = result.ticks[1] - result.ticks[0]
    for tick in result.ticks:
        assert result.low - 1e-9 <= tick <= result.high + 1e-9
        assert is_round(tick, step), (tick, step)
    if bounds is not None:
        assert bounds[0] <= result.low and result.high <= bounds[1]
    labels = [result.label(t) for t in result.ticks]
    assert len(set(labels)) == len(labels), labels  # enough decimals to tell ticks apart


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(FRACTIONS, min_size=1, max_size=30), st.booleans())
def test_a_bounded_metric_axis_never_passes_its_bound_and_ticks_are_round(values, zero):
    result = axis.value_axis(values, (0.0, 1.0), include_zero=zero)
    check_value_axis(values, (0.0, 1.0), result)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(ANY_VALUES, min_size=1, max_size=30), st.booleans())
def test_any_values_get_round_ticks_covering_them(values, zero):
    check_value_axis(values, None, axis.value_axis(values, include_zero=zero))


def test_the_reported_case_accuracy_ends_at_one_not_1_07():
    result = axis.value_axis([0.99], value_range("sparse_categorical_accuracy"))
    assert result.high == 1.0
    assert [result.label(t) for t in result.ticks] == ["0", "0.25", "0.50", "0.75", "1.00"]
    # An unbounded metric (an error) still ends at a round tick above its values.
    rmse = axis.value_axis([3.7, 2.1], value_range("root_mean_squared_error"))
    assert rmse.high == 4.0 and rmse.ticks == (0.0, 1.0, 2.0, 3.0, 4.0)


def test_fractions_are_bounded_errors_and_counts_are_not():
    assert value_range("auc") == value_range("binary_accuracy") == (0.0, 1.0)
    assert value_range("outputs/precision[class_id=1]") == (0.0, 1.0)
    assert value_range("root_mean_squared_error") is None
    assert value_range("loss") is None and value_range("example_count") is None


def check_time_axis(times, plot_x, plot_w, width, result: axis.TimeAxis) -> None:
    assert result.low_ms <= min(times) and max(times) <= result.high_ms
    assert result.high_ms - result.low_ms >= axis.MIN_SPAN_MS - 1

    def x(ms):
        return plot_x + plot_w * (ms - result.low_ms) / (result.high_ms - result.low_ms)

    boxes = sorted(
        (x(ms) - axis.label_width(t) / 2, x(ms) + axis.label_width(t) / 2)
        for ms, t in result.ticks
    )
    for left, right in boxes:
        assert 0 <= left and right <= width
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert b[0] - a[1] >= axis.LABEL_GAP_PX, (a, b)
    labels = [t for _, t in result.ticks]
    assert len(set(labels)) == len(labels), labels


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(TIMES, BURSTS), OFFSETS, st.integers(min_value=120, max_value=1400))
def test_time_labels_never_overlap_nor_leave_the_drawing(times, offset, width):
    plot_x, plot_w = 54, width - 68
    result = axis.time_axis(times, plot_x, plot_w, 0, width, offset)
    check_time_axis(times, plot_x, plot_w, width, result)
    if width >= 400:
        assert result.ticks  # a chart of a readable width always says when


def test_one_run_gets_labels_at_round_times_around_it():
    one = 1_796_662_190_000  # 2026-12-07 16:49:50 UTC
    result = axis.time_axis([one], 54, 692, 0, 760, offset_ms=0)
    texts = [t for _, t in result.ticks]
    assert texts[0].startswith("12-07 ") and len(texts) >= 2
    for ms, _ in result.ticks:
        assert ms % 15_000 == 0  # round times, seconds apart at most every 15 s
    assert result.low_ms < one < result.high_ms


def test_the_line_chart_places_labels_and_ticks_from_the_axes():
    one = 1_796_662_190_000
    svg = line_chart_svg(
        [Series("accuracy", [Point(one, 0.99), Point(one + 2_000, 0.98)])],
        width=760, x_times=True, bounds=(0.0, 1.0), element_id="m",
    )
    y_ticks = re.findall(r'class="axis y-tick"[^>]*>([^<]*)<', svg)
    assert y_ticks[-1] == "1.00" and "1.07" not in svg
    x_ticks = re.findall(r'class="axis x-tick" x="([\d.]+)"[^>]*>([^<]*)<', svg)
    assert len(x_ticks) >= 2 and len({t for _, t in x_ticks}) == len(x_ticks)
    xs = [float(x) for x, _ in x_ticks]
    assert xs == sorted(xs) and all(b - a > 60 for a, b in zip(xs, xs[1:], strict=False))
