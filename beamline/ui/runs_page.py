"""The runs page: the table `beamline runs` prints, filterable by pipeline and state, kept live
by polling its JSON twin (/api/runs)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape

from beamline.lineage.format import blessed_text, duration, when
from beamline.lineage.model import Graph
from beamline.lineage.runs import RunSummary, run_summaries
from beamline.metadata import run_context as rc
from beamline.report.page import badge
from beamline.ui.layout import model_url, page, pipeline_url, run_url, url

STATES = (
    rc.RunState.RUNNING,
    rc.RunState.COMPLETE,
    rc.RunState.FAILED,
    rc.RunState.STOPPED,
    rc.RunState.KILLED,
    rc.RunState.EMPTY,
)
DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000
POLL_MS = 2000


@dataclass(frozen=True)
class RunFilter:
    pipeline: str | None = None
    state: str | None = None
    limit: int = DEFAULT_LIMIT


def select(
    graph: Graph, flt: RunFilter, every: list[RunSummary] | None = None
) -> tuple[list[RunSummary], int]:
    """(newest-first summaries shown, how many matched); `every`: the summaries of every run
    of flt.pipeline, oldest first, when already at hand."""
    summaries = list(reversed(every if every is not None else run_summaries(graph, flt.pipeline)))
    if flt.state:
        summaries = [s for s in summaries if s.state == flt.state]
    return summaries[: flt.limit], len(summaries)


def _row(graph: Graph, s: RunSummary) -> str:
    run = graph.runs[s.run_id]
    trigger = run.properties.get(rc.TRIGGER)
    pushed = (
        f'<a href="{escape(model_url(s.pipeline, s.pushed_version))}">'
        f"{escape(s.pushed_version)}</a>"
        if s.pushed_version
        else "-"
    )
    reason = f' title="{escape(s.reason)}"' if s.reason else ""
    return (
        f'<tr data-run="{escape(s.run_id)}" data-state="{escape(s.state)}">'
        f'<td><input type="checkbox" class="pick" value="{escape(s.run_id)}" '
        f'aria-label="pick {escape(s.run_id)}"></td>'
        f'<td><a href="{escape(run_url(s.run_id))}"><code>{escape(s.run_id)}</code></a></td>'
        f'<td><a href="{escape(pipeline_url(s.pipeline))}">{escape(s.pipeline)}</a></td>'
        f"<td>{escape(str(trigger)) if trigger else '-'}</td>"
        f"<td>{escape(s.span) if s.span is not None else '-'}</td>"
        f"<td>{escape(when(s.start_ms))}</td>"
        f'<td class="state"{reason}>{badge(s.state)}</td>'
        f'<td class="n">{escape(duration(s.duration_s))}</td>'
        f'<td class="n">{s.executed} run · {s.cached} cached'
        + (f" · {s.failed} failed" if s.failed else "")
        + f"</td><td>{badge(blessed_text(s.blessed))}</td><td>{pushed}</td></tr>"
    )


def tbody(graph: Graph, summaries: list[RunSummary]) -> str:
    if not summaries:
        return '<tr><td colspan="11" class="muted" id="no-runs">No runs match.</td></tr>'
    return "".join(_row(graph, s) for s in summaries)


def fragment(
    graph: Graph, flt: RunFilter, every: list[RunSummary] | None = None, data: bool = True
) -> dict:
    """The live part of the page, for /api/runs: the table body and the count line (and, with
    `data`, the runs as JSON)."""
    summaries, total = select(graph, flt, every)
    body = tbody(graph, summaries)
    count = _count(len(summaries), total)
    return {
        "live": True,
        "runs": [_json(s) for s in summaries] if data else [],
        "fragments": {
            "runs-body": {"html": body, "version": hashlib.sha1(body.encode()).hexdigest()},
            "runs-count": {"html": count, "version": count},
        },
    }


def _json(summary: RunSummary) -> dict:
    """RunSummary.to_json without dataclasses.asdict's deep copy (its fields are flat): the
    live poll serialises up to `limit` of them every 2 s."""
    data = dict(vars(summary))
    data["duration_s"] = round(summary.duration_s, 3)
    return data


def _count(shown: int, total: int) -> str:
    return f"{shown} of {total} runs" if shown < total else f"{total} runs"


def render(graph: Graph, flt: RunFilter, every: list[RunSummary] | None = None) -> str:
    live = fragment(graph, flt, every, data=False)["fragments"]
    pipelines = "".join(
        f'<option value="{escape(p)}"{" selected" if p == flt.pipeline else ""}>{escape(p)}'
        "</option>"
        for p in graph.pipelines()
    )
    states = "".join(
        f'<option value="{s}"{" selected" if s == flt.state else ""}>{s}</option>' for s in STATES
    )
    api = url("/api/runs", pipeline=flt.pipeline, state=flt.state, limit=str(flt.limit))
    headers = "".join(
        f"<th>{h}</th>"
        for h in (
            "",
            "Run",
            "Pipeline",
            "Trigger",
            "Span",
            "Started",
            "State",
            "Duration",
            "Cache",
            "Blessed",
            "Pushed",
        )
    )
    body = (
        '<h1>Runs</h1><form class="filters" method="get" action="/">'
        '<label>Pipeline <select name="pipeline"><option value="">all</option>'
        f"{pipelines}</select></label>"
        f'<label>State <select name="state"><option value="">any</option>{states}</select>'
        '</label><button type="submit">Filter</button>'
        '<button type="button" id="compare-selected">Compare two checked runs</button>'
        f'<span class="muted" id="runs-count">{live["runs-count"]["html"]}</span></form>'
        f'<div data-poll="{escape(api)}" data-interval="{POLL_MS}">'
        f'<table id="runs-table"><thead><tr>{headers}</tr></thead>'
        f'<tbody id="runs-body" data-version="{live["runs-body"]["version"]}">'
        f"{live['runs-body']['html']}</tbody></table></div>"
    )
    if not graph.runs:
        body += (
            '<p class="muted" id="empty-store">The store holds no runs yet: run a pipeline '
            "(<code>beamline run NAME</code>) and it appears here.</p>"
        )
    return page("Beamline · runs", body, graph.source)
