"""Inline SVG pieces for the HTML report: a layered DAG and small histograms (no scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


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


def dag_svg(
    boxes: Sequence[Box],
    edges: Sequence[tuple[str, str]],
    box_w: int = 168,
    box_h: int = 44,
    gap_x: int = 56,
    gap_y: int = 18,
    element_id: str = "",
) -> str:
    """Left-to-right layered graph of `boxes` with arrows for `edges`."""
    ids = [b.id for b in boxes]
    pos = layers(ids, edges)
    if not pos:
        return '<p class="muted">Nothing to draw.</p>'
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
        f'viewBox="0 0 {width} {height}">',
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
        title = escape(box.title if len(box.title) <= 22 else box.title[:21] + "…")
        sub = escape(box.subtitle if len(box.subtitle) <= 28 else box.subtitle[:27] + "…")
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
