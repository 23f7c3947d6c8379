"""Chart axes people read at a glance: round value ticks that never pass a bounded metric's
bound, and time labels at round times that never overlap. Pure functions (no drawing): the
charts of beamline.report.svg place what these return."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import NamedTuple

# Mantissas of a round step: 1, 2, 2.5 and 5 times a power of ten.
_MANTISSAS = (1.0, 2.0, 2.5, 5.0)
# The narrowest value range an axis spans (a metric's differences below it are noise).
MIN_VALUE_SPAN = 1e-6
# Pixels per character of an axis label (11px system-ui; digits are ~6.1px): an upper estimate.
CHAR_PX = 7.0
# Pixels kept free between two time labels.
LABEL_GAP_PX = 10.0
# At most one time label per this many pixels of plot: an axis to read, not a ruler.
MIN_LABEL_PITCH_PX = 110.0
# The narrowest time span drawn: runs closer than this are spread over it, around their middle.
MIN_SPAN_MS = 2 * 60 * 1000

SECOND, MINUTE, HOUR, DAY = 1000, 60 * 1000, 3600 * 1000, 24 * 3600 * 1000
# Round time steps, smallest first.
TIME_STEPS = (
    SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
    MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
    DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY, 182 * DAY, 364 * DAY,
)


def round_step(span: float, max_ticks: int = 5) -> float:
    """The smallest round step (1, 2, 2.5 or 5 × 10^k) that covers `span` in at most
    `max_ticks` - 1 steps."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    rough = span / max(max_ticks - 1, 1)
    power = 10.0 ** math.floor(math.log10(rough))
    for mantissa in (*_MANTISSAS, 10.0):
        if mantissa * power >= rough * (1 - 1e-9):
            return mantissa * power
    return 10.0 * power  # not reached


def step_decimals(step: float) -> int:
    """Decimals that print every multiple of a round `step` exactly (0.25 needs two, 0.2 one,
    25 none)."""
    exponent = math.floor(math.log10(step) + 1e-9)
    quarter = math.isclose(step / 10.0**exponent, 2.5, rel_tol=1e-6)
    return max(0, -exponent + (1 if quarter else 0))


class ValueAxis(NamedTuple):
    """A y axis: its ends and its ticks (round values), each labelled with `decimals`."""

    low: float
    high: float
    ticks: tuple[float, ...]
    decimals: int

    def label(self, value: float) -> str:
        text = f"{value:.{self.decimals}f}"
        return "0" if text.strip("-0.") == "" else text


def value_axis(
    values: Sequence[float],
    bounds: tuple[float, float] | None = None,
    include_zero: bool = True,
    max_ticks: int = 5,
) -> ValueAxis:
    """A y axis over `values`: from a round tick at or below the lowest value to one at or above
    the highest, ticks every round step. `bounds`: the metric's range (accuracy, AUC: (0, 1)):
    the axis never passes it while the values stay inside it. `include_zero`: start at 0 when
    every value is positive (end at 0 when every value is negative)."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        finite = [0.0]
    lo, hi = min(finite), max(finite)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    inside = bounds is not None and bounds[0] <= lo and hi <= bounds[1]
    if hi - lo < MIN_VALUE_SPAN:
        # One value (or all within a millionth): one round step around it, inside the bounds.
        step = round_step(max(max(abs(lo), abs(hi)) or 1.0, MIN_VALUE_SPAN), 3)
        middle = (lo + hi) / 2
        lo, hi = middle - step / 2, middle + step / 2
        if inside:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    step = round_step(hi - lo, max_ticks)
    low = math.floor(lo / step + 1e-9) * step
    high = math.ceil(hi / step - 1e-9) * step
    if inside:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    decimals = step_decimals(step)
    ticks = tuple(round(i * step, decimals + 2) for i in range(first, last + 1))
    return ValueAxis(low, high, ticks, decimals)


class TimeAxis(NamedTuple):
    low_ms: float
    high_ms: float
    ticks: tuple[tuple[float, str], ...]  # (ms since the epoch, label)


def label_width(text: str) -> float:
    return len(text) * CHAR_PX


def _format(ms: float, step: int, offset_ms: int, with_date: bool) -> str:
    moment = time.gmtime((ms + offset_ms) / 1000)
    if step >= DAY:
        return time.strftime("%Y-%m-%d" if step >= 91 * DAY else "%m-%d", moment)
    clock = time.strftime("%H:%M:%S" if step < MINUTE else "%H:%M", moment)
    return time.strftime("%m-%d ", moment) + clock if with_date else clock


def _labels(low: float, high: float, step: int, offset_ms: int) -> list[tuple[float, str]]:
    """The multiples of `step` (in local time) in [low, high]; the first label of each day
    carries its date."""
    first = math.ceil((low + offset_ms) / step) * step - offset_ms
    out: list[tuple[float, str]] = []
    day = None
    at = first
    while at <= high and len(out) <= 400:
        today = math.floor((at + offset_ms) / DAY)
        out.append((at, _format(at, step, offset_ms, today != day)))
        day = today
        at += step
    return out


def fits(positions: Sequence[tuple[float, str]], left: float, right: float) -> bool:
    """Whether labels centred on their x positions stay within [left, right] and keep
    LABEL_GAP_PX apart."""
    boxes = sorted((x - label_width(t) / 2, x + label_width(t) / 2) for x, t in positions)
    if boxes and (boxes[0][0] < left or boxes[-1][1] > right):
        return False
    return all(b[0] - a[1] >= LABEL_GAP_PX for a, b in zip(boxes, boxes[1:], strict=False))


def time_axis(
    times_ms: Sequence[float],
    plot_x: float,
    plot_w: float,
    left: float = 0.0,
    right: float | None = None,
    offset_ms: int | None = None,
) -> TimeAxis:
    """An x axis over `times_ms` drawn from plot_x to plot_x + plot_w: labels at round times
    (every 15 minutes, every day...) as dense as fits without two labels overlapping or one
    leaving [left, right] (the drawing's width). Runs closer than MIN_SPAN_MS (one run, a sweep
    started at once) are spread over it around their middle. `offset_ms`: the local time's
    offset from UTC (default: this machine's at the first time)."""
    right = plot_x + plot_w if right is None else right
    finite = [float(t) for t in times_ms if math.isfinite(t)] or [0.0]
    low, high = min(finite), max(finite)
    if high - low < MIN_SPAN_MS:
        middle = (low + high) / 2
        low, high = middle - MIN_SPAN_MS / 2, middle + MIN_SPAN_MS / 2
    if offset_ms is None:
        offset_ms = local_offset_ms(low)

    def x(ms: float) -> float:
        return plot_x + plot_w * (ms - low) / (high - low)

    best: list[tuple[float, str]] = []
    for step in TIME_STEPS:
        if (high - low) / step > 400:
            continue
        labels = [(at, text) for at, text in _labels(low, high, step, offset_ms)]
        # Labels that would leave the drawing at either end are dropped, not squeezed.
        placed = [
            (at, text) for at, text in labels
            if x(at) - label_width(text) / 2 >= left and x(at) + label_width(text) / 2 <= right
        ]
        crowded = len(placed) > max(2, int(plot_w // MIN_LABEL_PITCH_PX))
        if placed and not crowded and fits([(x(at), text) for at, text in placed], left, right):
            best = placed
            break
    if not best:
        # Nothing round fits (a very narrow drawing): the middle time alone, if it fits at all.
        middle = (low + high) / 2
        text = _format(middle, MINUTE, offset_ms, True)
        if fits([(x(middle), text)], left, right):
            best = [(middle, text)]
    return TimeAxis(low, high, tuple(best))


def local_offset_ms(ms: float) -> int:
    """This machine's offset from UTC at `ms` (DST included)."""
    moment = time.localtime(ms / 1000)
    return int(moment.tm_gmtoff or 0) * 1000
