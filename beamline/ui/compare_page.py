"""Compare two runs: what `beamline diff` says, and the statistics drift per feature drawn
against its threshold."""

from __future__ import annotations

from html import escape

from beamline.lineage.diff import diff_runs
from beamline.lineage.format import MEASURES, diff_text
from beamline.lineage.model import Graph, Run
from beamline.report.svg import bars_svg
from beamline.ui.layout import page, run_url


def _picker(graph: Graph, a: Run | None, b: Run | None) -> str:
    runs = list(reversed(graph.sorted_runs()))[:500]

    def options(chosen: Run | None) -> str:
        return "".join(
            f'<option value="{escape(r.id)}"{" selected" if chosen and r.id == chosen.id else ""}>'
            f"{escape(r.pipeline)} · {escape(r.id)}</option>"
            for r in runs
        )

    return (
        '<form class="filters" method="get" action="/compare">'
        f'<label>A <select name="a">{options(a)}</select></label>'
        f'<label>B <select name="b">{options(b)}</select></label>'
        '<button type="submit">Compare</button></form>'
    )


def render_picker(graph: Graph) -> str:
    body = "<h1>Compare two runs</h1>" + _picker(graph, None, None)
    if not graph.runs:
        body += '<p class="muted">The store holds no runs yet.</p>'
    return page("Beamline · compare", body, graph.source)


def render(graph: Graph, a: Run, b: Run) -> str:
    diff = diff_runs(graph, a, b)
    charts = []
    for split, features in diff.drift.items():
        rows = [
            (
                f"{d.feature} ({MEASURES.get(d.measure, d.measure)})",
                d.value,
                d.threshold,
                "over" if d.drifted else "",
            )
            for d in features
        ]
        charts.append(
            f'<figure class="drift-chart" data-split="{escape(split)}"><figcaption>Split '
            f"{escape(split)}: drift per feature, A → B (dashed: threshold)</figcaption>"
            f"{bars_svg(rows, element_id=f'drift-{split}')}</figure>"
        )
    drift = "".join(charts) or (
        '<p class="muted" id="no-drift">No drift drawn: '
        + escape(" ".join(diff.notes) or "the runs have no comparable statistics.")
        + "</p>"
    )
    body = (
        f'<h1>Compare <a href="{escape(run_url(a.id))}"><code>{escape(a.id)}</code></a> → '
        f'<a href="{escape(run_url(b.id))}"><code>{escape(b.id)}</code></a></h1>'
        + _picker(graph, a, b)
        + '<section id="drift"><h2>Statistics drift per feature</h2>'
        + drift
        + '</section><section id="diff"><h2>What changed (beamline diff)</h2>'
        + f'<pre id="diff-text">{escape(diff_text(diff))}</pre></section>'
    )
    return page(f"Beamline · compare {a.id} → {b.id}", body, graph.source)
