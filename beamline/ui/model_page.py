"""A model version's page: its lineage drawn back to the data (span, files, hashes), the data
and code versions it was trained on with the command that restores them, its TFMA evaluation
(metrics and slices), and the labels it held over time."""

from __future__ import annotations

import time
from html import escape

from beamline.errors import ConfigError
from beamline.lineage.format import when
from beamline.lineage.model import Artifact, Graph
from beamline.lineage.runs import summarize
from beamline.lineage.trace import upstream
from beamline.metadata import records
from beamline.metadata import run_context as rc
from beamline.metadata.labels import LabelChange
from beamline.report import sections
from beamline.report.page import badge, table
from beamline.report.svg import Bar, gantt_svg
from beamline.ui.layout import data_version_url, model_url, page, pipeline_url, run_url


class UnknownVersion(ConfigError):
    """No run of the pipeline pushed that version."""


def pushed_models(graph: Graph, pipeline: str) -> list[Artifact]:
    """The pipeline's PushedModel artifacts that pushed, oldest first."""
    found = []
    for art in graph.artifacts.values():
        if art.type != rc.PUSHED_MODEL_TYPE or rc.push_from(art.properties) is None:
            continue
        producer = graph.producer(art.id)
        if producer is not None and producer.pipeline == pipeline:
            found.append(art)
    return sorted(found, key=lambda a: (a.create_ms, a.id))


def find_version(graph: Graph, pipeline: str, version: str) -> Artifact:
    matches = [
        a for a in pushed_models(graph, pipeline) if str(a.prop("pushed_version")) == version
    ]
    if not matches:
        known = ", ".join(
            str(a.prop("pushed_version")) for a in pushed_models(graph, pipeline)[-5:]
        )
        raise UnknownVersion(
            f"Pipeline {pipeline!r} has no pushed model version {version!r} in {graph.source} "
            f"(recent versions: {known or 'none'}). The pipeline page lists its versions."
        )
    return matches[-1]


def held_periods(changes: list[LabelChange], version: int, now_ms: int) -> list[Bar]:
    """When each label pointed at `version`: one bar per period, open periods end now."""
    bars = []
    open_since: dict[str, int] = {}
    for change in changes:
        if change.label in open_since and change.to_version != version:
            start = open_since.pop(change.label)
            bars.append(
                Bar(
                    f"{change.label}-{start}",
                    change.label,
                    start,
                    change.time_ms,
                    "state-COMPLETE",
                    f"{change.label}: until {change.action}",
                )
            )
        if change.to_version == version and change.label not in open_since:
            open_since[change.label] = change.time_ms
    for label, start in open_since.items():
        bars.append(
            Bar(
                f"{label}-{start}",
                label,
                start,
                max(now_ms, start),
                "state-RUNNING",
                f"{label}: holds it now",
            )
        )
    return bars


def _version_link(pipeline: str, version: int) -> str:
    if version == records.NO_VERSION:
        return "-"
    return f'<a href="{escape(model_url(pipeline, str(version)))}">{version}</a>'


def label_table(changes: list[LabelChange], pipeline: str, element_id: str) -> str:
    """Label changes, newest first, versions linked to their pages."""
    rows = [
        [
            escape(when(c.time_ms)),
            f"<b>{escape(c.label)}</b>",
            escape(c.action),
            _version_link(pipeline, c.from_version),
            _version_link(pipeline, c.to_version),
            escape(c.user),
            escape(c.reason),
        ]
        for c in reversed(changes)
    ]
    return table(["When", "Label", "Action", "From", "To", "User", "Reason"], rows, id=element_id)


def labels_section(changes: list[LabelChange], pipeline: str, version: int) -> str:
    mine = [c for c in changes if version in (c.to_version, c.from_version)]
    if not mine:
        return '<p class="muted" id="no-labels">No label history yet for this version.</p>'
    bars = held_periods(changes, version, int(time.time() * 1000))
    chart = gantt_svg(bars, element_id="labels-svg") if bars else ""
    return f'<div class="scroll">{chart}</div>' + label_table(mine, pipeline, "labels-table")


def _data_version_link(kept: dict, text: str) -> str:
    url = data_version_url(kept["pipeline"], kept["data_version"])
    return f'<a href="{escape(url)}" class="data-version-link"><code>{escape(text)}</code></a>'


def versions_section(kept: dict | None) -> str:
    """The data and code versions the model was trained on, and the command restoring them."""
    if kept is None:
        return ""
    head = '<section id="data-and-code"><h2>Data and code</h2>'
    if kept["run_id"] is None:
        return head + (f'<p class="muted" id="no-data-version">None kept: '
                       f"{escape(kept['why_none'])}.</p></section>")
    code = (f" and code version <code>{escape(kept['code_version'])}</code>"
            if kept["code_version"] else "")
    gone = ""
    if kept["in_store"] is False:
        gone = ('<p class="anomaly" id="versions-gone">Not all in the store any more: '
                + escape(kept.get("problem") or "`beamline gc` deleted them, or the UI reads "
                         "another run root") + "</p>")
    return (
        head + '<p id="trained-on">Trained on data version '
        f"{_data_version_link(kept, kept['data_version'])}{code}, kept by run "
        f'<a href="{escape(run_url(kept["run_id"]))}"><code>{escape(kept["run_id"])}</code></a>'
        ". Restore both, the data byte for byte and the code under <code>DIR/code/</code>:</p>"
        f'{gone}<pre id="checkout-command"><code>{escape(kept["checkout"])}</code></pre>'
        "</section>"
    )


def render(
    graph: Graph, pipeline: str, version: str, changes: list[LabelChange],
    kept: dict | None = None,
) -> str:
    art = find_version(graph, pipeline, version)
    producer = graph.producer(art.id)
    lineage = upstream(graph, art.id, payload=False)
    execs = sorted(
        (graph.executions[s.execution_id] for s in lineage.steps),
        key=lambda e: (e.start_ms, e.id),
    )
    run = graph.runs.get(producer.run_id) if producer else None
    summary = summarize(graph, run) if run else None
    run_execs = graph.run_executions(run.id) if run else []
    try:
        number = int(version)
    except ValueError:
        number = records.NO_VERSION
    facts = [
        ("Version", escape(version)),
        ("Pushed", escape(when(art.create_ms))),
        ("Destination", f"<code>{escape(str(art.prop('pushed_destination') or '-'))}</code>"),
        (
            "Run",
            f'<a href="{escape(run_url(run.id))}"><code>{escape(run.id)}</code></a>'
            if run
            else "-",
        ),
        ("Span", escape(summary.span or "-") if summary else "-"),
        (
            "Data version",
            _data_version_link(kept, kept["data_version"][:12])
            if kept and kept["data_version"] else "-",
        ),
        (
            "Blessed",
            badge({True: "yes", False: "NO", None: "-"}[summary.blessed]) if summary else "-",
        ),
    ]
    cards = "".join(
        f'<div class="card"><span class="muted">{k}</span><b>{v}</b></div>' for k, v in facts
    )
    body = (
        f"<h1>{escape(pipeline)} · model version <code>{escape(version)}</code></h1>"
        f'<p class="muted">Pipeline <a href="{escape(pipeline_url(pipeline))}">'
        f"{escape(pipeline)}</a> · PushedModel #{art.id}</p>"
        f'<div class="cards" id="cards">{cards}</div>'
        '<section id="model-lineage"><h2>Lineage back to the data</h2><p class="muted">Every '
        "execution this version was built from, across runs (cached steps point at the run that "
        "really ran them), down to the source files and their hashes.</p>"
        f'<div class="scroll">{sections.lineage(graph, execs, "model-lineage-svg")}</div>'
        + sections.sources(graph, execs)
        + "</section>"
        + versions_section(kept)
        + '<section id="metrics"><h2>Evaluation (TFMA)</h2>'
        + sections.metrics(graph, run_execs, summary.blessed if summary else None)
        + '</section><section id="labels"><h2>Labels over time</h2>'
        + labels_section(changes, pipeline, number)
        + "</section>"
    )
    return page(f"{pipeline} · version {version}", body, graph.source)
