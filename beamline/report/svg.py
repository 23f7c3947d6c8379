"""Inline SVG pieces shared by the HTML report and `beamline ui`: a layered DAG, a Gantt
timeline, line and bar charts, small histograms (no scripts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from beamline.report import axis


@dataclass
class Box:
    id: str
    title: str
    subtitle: str = ""
    css: str = ""  # class name, e.g. state-COMPLETE
    tooltip: str = ""
    href: str = ""  # in-page anchor


def layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """node -> (layer, position): longest-path layering, barycentre ordering within layers."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in preds and b in preds and a != b:
            preds[b].append(a)
    depth: dict[str, int] = {}

    def visit(node: str, stack: set[str]) -> int:
        if node in depth:
            return depth[node]
        if node in stack:  # a cycle: should not happen in lineage, but never loop
            return 0
        stack.add(node)
        value = 1 + max((visit(p, stack) for p in preds[node]), default=-1)
        stack.discard(node)
        depth[node] = value
        return value

    for node in nodes:
        visit(node, set())
    by_layer: dict[int, list[str]] = {}
    for node in nodes:
        by_layer.setdefault(depth[node], []).append(node)
    position: dict[str, tuple[int, int]] = {}
    for layer in sorted(by_layer):
        members = by_layer[layer]
        if layer > 0:

            def centre(node: str) -> float:
                ps = [position[p][1] for p in preds[node] if p in position]
                return sum(ps) / len(ps) if ps else 0.0

            members = sorted(members, key=lambda n: (centre(n), nodes.index(n)))
        for index, node in enumerate(members):
            position[node] = (layer, index)
    return position


# A box's title (600 12px) and subtitle (11px) are cut at these lengths; pixels per character
# are upper estimates, so the text stays inside its box.
TITLE_CHARS, SUBTITLE_CHARS = 22, 28
TITLE_PX, SUBTITLE_PX = 7.4, 6.4
# A drawing wider than its container is scaled down to fit (by its viewBox), but never below
# this: smaller text is not read at a glance; past it the container scrolls.
MIN_SCALE = 0.8


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def box_width(boxes: Sequence[Box], narrowest: int = 96, widest: int = 176) -> int:
    """The width that holds every box's (cut) title and subtitle, within [narrowest, widest]."""
    need = max(
        (
            max(len(_cut(b.title, TITLE_CHARS)) * TITLE_PX,
                len(_cut(b.subtitle, SUBTITLE_CHARS)) * SUBTITLE_PX)
            for b in boxes
        ),
        default=0.0,
    )
    return min(max(math.ceil(need + 16), narrowest), widest)


def fitted(width: float) -> str:
    """The style of a drawing `width` wide that scales down to its container's width, but not
    below MIN_SCALE (then its container scrolls)."""
    return f"max-width:100%;height:auto;min-width:{min(width, width * MIN_SCALE):.0f}px"


def dag_svg(
    boxes: Sequence[Box],
    edges: Sequence[tuple[str, str]],
    box_w: int | None = None,
    box_h: int = 44,
    gap_x: int = 36,
    gap_y: int = 18,
    element_id: str = "",
) -> str:
    """Left-to-right layered graph of `boxes` with arrows for `edges`; boxes as wide as their
    text needs (`box_w`: a fixed width). The drawing scales down to fit its container's width
    (see `fitted`)."""
    ids = [b.id for b in boxes]
    pos = layers(ids, edges)
    if not pos:
        return '<p class="muted">Nothing to draw.</p>'
    box_w = box_w or box_width(boxes)
    n_layers = max(p[0] for p in pos.values()) + 1
    per_layer = [sum(1 for p in pos.values() if p[0] == i) for i in range(n_layers)]
    tallest = max(per_layer)
    width = n_layers * box_w + (n_layers - 1) * gap_x + 20
    height = tallest * box_h + (tallest - 1) * gap_y + 20

    def xy(node: str) -> tuple[float, float]:
        layer, index = pos[node]
        count = per_layer[layer]
        offset = (height - 20 - (count * box_h + (count - 1) * gap_y)) / 2
        return 10 + layer * (box_w + gap_x), 10 + offset + index * (box_h + gap_y)

    attr = f' id="{escape(element_id)}"' if element_id else ""
    out = [
        f'<svg{attr} class="dag" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="{fitted(width)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"/></marker></defs>',
    ]
    for a, b in edges:
        if a not in pos or b not in pos or a == b:
            continue
        x1, y1 = xy(a)
        x2, y2 = xy(b)
        sx, sy = x1 + box_w, y1 + box_h / 2
        ex, ey = x2, y2 + box_h / 2
        mid = (sx + ex) / 2
        out.append(
            f'<path class="edge" d="M{sx:.0f},{sy:.0f} C{mid:.0f},{sy:.0f} {mid:.0f},{ey:.0f} '
            f'{ex - 2:.0f},{ey:.0f}" marker-end="url(#arrow)"/>'
        )
    for box in boxes:
        x, y = xy(box.id)
        title = escape(_cut(box.title, TITLE_CHARS))
        sub = escape(_cut(box.subtitle, SUBTITLE_CHARS))
        tip = f"<title>{escape(box.tooltip)}</title>" if box.tooltip else ""
        node = (
            f'<g class="node {escape(box.css)}" data-node="{escape(box.id)}">{tip}'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="6"/>'
            f'<text x="{x + 8:.0f}" y="{y + 18:.0f}" class="t">{title}</text>'
            f'<text x="{x + 8:.0f}" y="{y + 35:.0f}" class="s">{sub}</text></g>'
        )
        if box.href:
            node = f'<a href="{escape(box.href)}">{node}</a>'
        out.append(node)
    out.append("</svg>")
    return "".join(out)


def histogram_svg(counts: Sequence[float], width: int = 160, height: int = 36) -> str:
    """Tiny bar chart of bucket counts."""
    if not counts or max(counts) <= 0:
        return ""
    top = max(counts)
    bar = width / len(counts)
    bars = []
    for i, count in enumerate(counts):
        h = max(1.0, (height - 2) * count / top) if count else 0
        bars.append(
            f'<rect x="{i * bar:.1f}" y="{height - h:.1f}" width="{max(bar - 1, 1):.1f}" '
            f'height="{h:.1f}"/>'
        )
    return (
        f'<svg class="hist" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        + "".join(bars)
        + "</svg>"
    )


@dataclass
class Bar:
    """One row of a Gantt chart: [start_ms, end_ms] of an execution."""

    id: str
    label: str
    start_ms: int
    end_ms: int
    css: str = ""
    tooltip: str = ""
    critical: bool = False


def gantt_svg(bars: Sequence[Bar], width: int = 900, row_h: int = 22, element_id: str = "") -> str:
    """Horizontal timeline: one row per bar in the given order, x proportional to time.

    Each bar carries its times (data-start-ms, data-end-ms) so a reader can check it against the
    store; critical bars get class `critical`.
    """
    if not bars:
        return '<p class="muted">No executions to draw.</p>'
    label_w = 170
    t0 = min(b.start_ms for b in bars)
    t1 = max(max(b.end_ms, b.start_ms) for b in bars)
    span = max(t1 - t0, 1)
    plot_w = width - label_w - 70
    height = len(bars) * row_h + 28
    attr = f' id="{escape(element_id)}"' if element_id else ""
    out = [
        f'<svg{attr} class="gantt" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-t0-ms="{t0}" data-span-ms="{span}" '
        f'data-plot-x="{label_w}" data-plot-w="{plot_w}">'
    ]
    for tick in range(5):
        x = label_w + plot_w * tick / 4
        out.append(
            f'<line class="tick" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}"/>'
            f'<text class="axis" x="{x:.1f}" y="{height - 4}" text-anchor="middle">'
            f"{_seconds(span * tick / 4)}</text>"
        )
    for i, bar in enumerate(bars):
        y = 4 + i * row_h
        x = label_w + plot_w * (bar.start_ms - t0) / span
        w = max(plot_w * max(bar.end_ms - bar.start_ms, 0) / span, 1.0)
        css = f"bar {bar.css}" + (" critical" if bar.critical else "")
        tip = f"<title>{escape(bar.tooltip)}</title>" if bar.tooltip else ""
        label = bar.label if len(bar.label) <= 24 else bar.label[:23] + "…"
        out.append(
            f'<g class="{escape(css)}" data-bar="{escape(bar.id)}" data-start-ms="{bar.start_ms}" '
            f'data-end-ms="{bar.end_ms}">{tip}'
            f'<text class="label" x="{label_w - 6}" y="{y + row_h * 0.65:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row_h - 6}" rx="3"/>'
            f'<text class="dur" x="{x + w + 4:.1f}" y="{y + row_h * 0.65:.1f}">'
            f"{(bar.end_ms - bar.start_ms) / 1000:.1f}s</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f}s" if ms >= 1000 or ms == 0 else f"{ms:.0f}ms"


@dataclass
class Point:
    """One point of a line chart; `css` marks it (blessed, pushed, crossed...)."""

    x: float
    y: float
    label: str = ""
    css: str = ""
    href: str = ""


@dataclass
class Series:
    name: str
    points: list[Point]
    css: str = ""


def line_chart_svg(
    series: Sequence[Series],
    width: int = 640,
    height: int = 200,
    threshold: float | None = None,
    x_format=None,
    element_id: str = "",
    y_label: str = "",
    x_times: bool = False,
    bounds: tuple[float, float] | None = None,
) -> str:
    """Lines over x, optional horizontal threshold line, marked points. The y axis has round
    ticks and never passes `bounds` (a metric's range, e.g. (0, 1)) while the values stay inside
    it. `x_times`: x is ms since the epoch, labelled at round local times that never overlap;
    otherwise the ends are labelled with `x_format`."""
    points = [p for s in series for p in s.points]
    if not points:
        return '<p class="muted">Nothing to draw yet.</p>'
    left, right, top, bottom = 54, 14, (24 if y_label else 12), 30
    pw, ph = width - left - right, height - top - bottom
    xs = [p.x for p in points]
    ys = [p.y for p in points] + ([threshold] if threshold is not None else [])
    y_axis = axis.value_axis(ys, bounds)
    y0, y1 = y_axis.low, y_axis.high
    if x_times:
        x_axis = axis.time_axis(xs, left, pw, 0, width)
        x0, x1 = x_axis.low_ms, x_axis.high_ms
    else:
        x0, x1 = min(xs), max(xs)

    def sx(x: float) -> float:
        return left + (pw * (x - x0) / (x1 - x0) if x1 > x0 else pw / 2)

    def sy(y: float) -> float:
        return top + ph - ph * (y - y0) / (y1 - y0)

    attr = f' id="{escape(element_id)}"' if element_id else ""
    out = [
        f'<svg{attr} class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
    ]
    for value in y_axis.ticks:
        out.append(
            f'<line class="tick" x1="{left}" y1="{sy(value):.1f}" x2="{left + pw}" '
            f'y2="{sy(value):.1f}"/>'
            f'<text class="axis y-tick" x="{left - 4}" y="{sy(value) + 4:.1f}" '
            f'text-anchor="end">{escape(y_axis.label(value))}</text>'
        )
    out += [
        f'<line class="axis" x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}"/>',
    ]
    if y_label:
        out.append(f'<text class="axis" x="{left}" y="{top - 10}">{escape(y_label)}</text>')
    if x_times:
        for value, text in x_axis.ticks:
            out.append(
                f'<text class="axis x-tick" x="{sx(value):.1f}" y="{height - 8}" '
                f'text-anchor="middle">{escape(text)}</text>'
            )
    else:
        fmt = x_format or (lambda v: f"{v:g}")
        ends = ((x0, "start"), (x1, "end")) if x1 > x0 else ((x0, "middle"),)
        for value, anchor in ends:
            out.append(
                f'<text class="axis x-tick" x="{sx(value):.1f}" y="{height - 8}" '
                f'text-anchor="{anchor}">{escape(fmt(value))}</text>'
            )
    if threshold is not None:
        out.append(
            f'<line class="threshold" x1="{left}" y1="{sy(threshold):.1f}" x2="{left + pw}" '
            f'y2="{sy(threshold):.1f}"><title>threshold {threshold:g}</title></line>'
        )
    for s in series:
        ordered = sorted(s.points, key=lambda p: p.x)
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{sx(p.x):.1f},{sy(p.y):.1f}" for i, p in enumerate(ordered)
        )
        out.append(
            f'<path class="line {escape(s.css)}" d="{path}"><title>{escape(s.name)}</title></path>'
        )
        for p in ordered:
            dot = (
                f'<circle class="pt {escape(p.css)}" cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" '
                f'r="4" data-y="{p.y:g}"><title>{escape(p.label)}</title></circle>'
            )
            if p.href:
                dot = f'<a href="{escape(p.href)}">{dot}</a>'
            out.append(dot)
    out.append("</svg>")
    return "".join(out)


def bars_svg(
    rows: Sequence[tuple[str, float, float | None, str]],
    width: int = 520,
    row_h: int = 20,
    element_id: str = "",
) -> str:
    """Horizontal bars (label, value, threshold or None, css) on one scale; a tick per threshold."""
    if not rows:
        return '<p class="muted">Nothing to draw.</p>'
    label_w, value_w = 160, 70
    top = max(max(v, t or 0.0) for _, v, t, _ in rows) or 1.0
    plot_w = width - label_w - value_w
    height = len(rows) * row_h + 6
    attr = f' id="{escape(element_id)}"' if element_id else ""
    out = [
        f'<svg{attr} class="bars" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for i, (label, value, limit, css) in enumerate(rows):
        y = 3 + i * row_h
        w = max(plot_w * max(value, 0.0) / top, 1.0)
        name = label if len(label) <= 24 else label[:23] + "…"
        out.append(
            f'<g class="row {escape(css)}" data-label="{escape(label)}" data-value="{value:g}">'
            f'<text class="label" x="{label_w - 6}" y="{y + row_h * 0.7:.1f}" '
            f'text-anchor="end">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 5}"/>'
            f'<text class="value" x="{label_w + w + 4:.1f}" y="{y + row_h * 0.7:.1f}">'
            f"{value:.4g}</text>"
        )
        if limit is not None:
            tx = label_w + plot_w * limit / top
            out.append(
                f'<line class="threshold" x1="{tx:.1f}" y1="{y - 1}" x2="{tx:.1f}" '
                f'y2="{y + row_h - 3}"><title>threshold {limit:g}</title></line>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
