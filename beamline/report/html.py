"""One self-contained HTML file per run: DAG with states and durations, a Gantt timeline, TFDV
statistics and anomalies, TFMA metrics (overall and per slice, against the baseline) and the
lineage graph.

Everything is inline (CSS, SVG); a Content-Security-Policy forbids the page any fetch, so it opens
the same from a laptop, a CI artifact or an air-gapped machine. The sections are the ones
`beamline ui` shows (beamline.report.sections).
"""

from __future__ import annotations

from html import escape
from typing import Any

from beamline.lineage.model import Graph, Run
from beamline.lineage.runs import summarize
from beamline.report import sections
from beamline.report.page import document


def render_report(graph: Graph, run: Run, extra_sections: tuple[str, ...] = ()) -> str:
    """The report of `run` as one HTML document (`extra_sections`: HTML appended, e.g.
    monitoring)."""
    execs = graph.run_executions(run.id)
    summary = summarize(graph, run)
    dag, edges = sections.dag(graph, execs)
    title = f"{run.pipeline} · run {run.id}"
    body = [
        f'<header id="summary"><h1>{escape(title)}</h1>',
        f'<p class="muted">Beamline run report · metadata store <code>{escape(graph.source)}</code>'
        + (f" · {escape(summary.reason)}" if summary.reason else "")
        + "</p>",
        f'<div class="cards" id="cards">{sections.summary_cards(summary)}</div></header>',
        '<section id="dag"><h2>Pipeline</h2>'
        '<p class="muted">Green: executed · blue: from cache · red: failed. '
        "Hover a node for details.</p>",
        f'<div class="scroll">{dag}</div>',
        sections.nodes_table(graph, execs),
        "</section>",
        '<section id="timeline"><h2>Timeline</h2>',
        sections.timeline(execs, edges),
        "</section>",
        '<section id="statistics"><h2>Data statistics (TFDV)</h2>',
        sections.statistics(graph, execs),
        "</section>",
        '<section id="anomalies"><h2>Anomalies</h2>',
        sections.anomalies(graph, execs),
        "</section>",
        '<section id="metrics"><h2>Model evaluation (TFMA)</h2>',
        sections.metrics(graph, execs, summary.blessed),
        "</section>",
        '<section id="lineage"><h2>Lineage</h2>'
        '<p class="muted">Source files → executions → artifacts. Dashed yellow: the baseline '
        "model compared with. Artifacts from earlier runs were reused from the cache.</p>",
        f'<div class="scroll">{sections.lineage(graph, execs)}</div>',
        sections.sources(graph, execs),
        "</section>",
        *extra_sections,
    ]
    return document(title, "".join(body))


def report_json(graph: Graph, run: Run) -> dict[str, Any]:
    """What the report shows, for scripts (`beamline report --json`)."""
    return summarize(graph, run).to_json()
