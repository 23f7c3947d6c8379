"""One self-contained HTML file per run: DAG with states and durations, TFDV statistics and
anomalies, TFMA metrics (overall and per slice, against the baseline) and the lineage graph.

Everything is inline (CSS, SVG); a Content-Security-Policy forbids the page any fetch, so it opens
the same from a laptop, a CI artifact or an air-gapped machine.
"""

from __future__ import annotations

import os
from html import escape
from typing import Any

from beamline.lineage import payloads, tfma
from beamline.lineage.format import blessed_text, duration, number, signed, when
from beamline.lineage.model import CACHED, Execution, Graph, Run, outputs_of_type
from beamline.lineage.runs import summarize
from beamline.lineage.sources import is_example_gen, source_data
from beamline.lineage.trace import BASELINE_KEYS
from beamline.lineage.why import original
from beamline.report.svg import Box, dag_svg, histogram_svg

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)

STYLE = """
:root { --ok:#1a7f37; --cache:#0969da; --bad:#cf222e; --warn:#9a6700; --fg:#1f2328;
        --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); } code { font: 12px ui-monospace, monospace; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; } td.n { text-align: right;
     font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.card b { display: block; font-size: 17px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px;
         color: #fff; background: var(--muted); }
.b-COMPLETE, .b-complete, .b-yes { background: var(--ok); } .b-CACHED { background: var(--cache); }
.b-FAILED, .b-failed, .b-NO { background: var(--bad); } .b-RUNNING, .b-running,
.b-stopped { background: var(--warn); }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
          background: #fff; }
svg.dag .node rect { fill: #fff; stroke: var(--muted); stroke-width: 1.5; }
svg.dag .node text.t { font: 600 12px system-ui, sans-serif; fill: var(--fg); }
svg.dag .node text.s { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg.dag .state-COMPLETE rect { stroke: var(--ok); fill: #dafbe1; }
svg.dag .state-CACHED rect { stroke: var(--cache); fill: #ddf4ff; }
svg.dag .state-FAILED rect, svg.dag .state-CANCELED rect { stroke: var(--bad); fill: #ffebe9; }
svg.dag .state-RUNNING rect, svg.dag .state-NEW rect { stroke: var(--warn); fill: #fff8c5; }
svg.dag .artifact rect { fill: var(--bg); stroke-dasharray: 4 2; }
svg.dag .baseline rect { fill: #fff; stroke: var(--warn); stroke-dasharray: 2 2; }
svg.dag .source rect { fill: #fbefff; stroke: #8250df; }
svg.dag .edge { fill: none; stroke: #8c959f; stroke-width: 1.3; }
svg.dag .arrowhead { fill: #8c959f; }
svg.hist rect { fill: #54aeff; }
.anomaly { color: var(--bad); } .good { color: var(--ok); }
.delta-up { color: var(--ok); } .delta-down { color: var(--bad); }
details > summary { cursor: pointer; }
"""


def _badge(text: str) -> str:
    return f'<span class="badge b-{escape(text)}">{escape(text)}</span>'


def _table(
    headers: list[str], rows: list[list[str]], numeric: set[int] | None = None, **attrs
) -> str:
    """`rows` cells are HTML already."""
    numeric = numeric or set()
    attr = "".join(f' {k.rstrip("_")}="{escape(str(v))}"' for k, v in attrs.items())
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _outputs_of(graph: Graph, execs: list[Execution], type_name: str) -> list[int]:
    return outputs_of_type(graph, execs, type_name)


# ---------------------------------------------------------------- sections


def _dag(graph: Graph, execs: list[Execution]) -> tuple[str, list[tuple[str, str]]]:
    producer_node: dict[int, str] = {}
    for ex in execs:
        for aid in ex.output_ids():
            producer_node.setdefault(aid, ex.node_id)
    edges = []
    for ex in execs:
        for aid in ex.input_ids():
            src = producer_node.get(aid)
            if src and src != ex.node_id and (src, ex.node_id) not in edges:
                edges.append((src, ex.node_id))
    boxes = []
    for ex in execs:
        sub = f"{ex.state.lower()} · {duration(ex.duration_s)}"
        tip = f"{ex.node_id} ({ex.type}) execution #{ex.id}: {ex.state}, {duration(ex.duration_s)}"
        if ex.state == CACHED:
            src = original(graph, ex)
            if src.id != ex.id:
                tip += f"; reused execution #{src.id} of run {src.run_id}"
        boxes.append(Box(ex.node_id, ex.node_id, sub, f"state-{ex.state}", tip, f"#node-{ex.id}"))
    return dag_svg(boxes, edges, element_id="dag-svg"), edges


def _nodes_table(graph: Graph, execs: list[Execution]) -> str:
    rows = []
    for ex in execs:
        reused = ""
        if ex.state == CACHED:
            src = original(graph, ex)
            if src.id != ex.id:
                reused = f"execution #{src.id} of run <code>{escape(src.run_id)}</code>"
        outputs = ", ".join(
            f"{escape(graph.artifacts[a].type)} #{a}"
            for a in ex.output_ids()
            if a in graph.artifacts
        )
        rows.append(
            [
                f'<span id="node-{ex.id}">{escape(ex.node_id)}</span>',
                escape(ex.component),
                _badge(ex.state),
                duration(ex.duration_s),
                f"#{ex.id}",
                outputs,
                reused,
            ]
        )
    return _table(
        ["Node", "Component", "State", "Duration", "Execution", "Outputs", "Reused"],
        rows,
        numeric={3},
        id="nodes-table",
    )


def _statistics(graph: Graph, execs: list[Execution]) -> str:
    stats_ids = _outputs_of(graph, execs, "ExampleStatistics")
    if not stats_ids:
        return '<p class="muted">This run recorded no ExampleStatistics.</p>'
    parts = []
    art = graph.artifacts[stats_ids[0]]
    loaded = payloads.safe(payloads.load_statistics, art.uri, default={})
    if not loaded:
        return (
            f'<p class="muted">Statistics files not readable at <code>{escape(art.uri)}</code>.</p>'
        )
    for split, stats in loaded.items():
        n_examples, features = payloads.feature_summaries(stats)
        numeric_rows, categorical_rows = [], []
        for f in features:
            if f.numeric:
                numeric_rows.append(
                    [
                        escape(f.name),
                        f.type,
                        str(f.count),
                        _missing(f.missing, f.count),
                        number(f.mean),
                        number(f.std),
                        number(f.min),
                        number(f.max),
                        str(f.zeros if f.zeros is not None else "-"),
                        histogram_svg([c for _, _, c in f.histogram]),
                    ]
                )
            else:
                top = ", ".join(f"{escape(str(v))} ({int(c)})" for v, c in f.top[:5])
                categorical_rows.append(
                    [
                        escape(f.name),
                        f.type,
                        str(f.count),
                        _missing(f.missing, f.count),
                        str(f.unique if f.unique is not None else "-"),
                        top,
                        histogram_svg([c for _, c in f.top[:12]]),
                    ]
                )
        parts.append(
            f'<h3 data-split="{escape(split)}">Split {escape(split)} '
            f'<span class="muted">({n_examples} examples, {len(features)} features)</span></h3>'
        )
        if numeric_rows:
            parts.append(
                _table(
                    [
                        "Feature",
                        "Type",
                        "Count",
                        "Missing",
                        "Mean",
                        "Std",
                        "Min",
                        "Max",
                        "Zeros",
                        "Histogram",
                    ],
                    numeric_rows,
                    numeric={2, 4, 5, 6, 7, 8},
                    class_="stats numeric",
                )
            )
        if categorical_rows:
            parts.append(
                _table(
                    ["Feature", "Type", "Count", "Missing", "Unique", "Top values", "Distribution"],
                    categorical_rows,
                    numeric={2, 4},
                    class_="stats categorical",
                )
            )
    parts.append(
        f'<p class="muted">From ExampleStatistics #{art.id} <code>{escape(art.uri)}</code></p>'
    )
    return "".join(parts)


def _missing(missing: int, count: int) -> str:
    total = missing + count
    if not missing:
        return "0"
    return f'<span class="anomaly">{missing} ({100.0 * missing / total:.1f}%)</span>'


def _anomalies(graph: Graph, execs: list[Execution]) -> str:
    ids = _outputs_of(graph, execs, "ExampleAnomalies")
    if not ids:
        return '<p class="muted">This run recorded no ExampleAnomalies.</p>'
    rows = []
    for aid in ids:
        found = payloads.safe(payloads.load_anomalies, graph.artifacts[aid].uri, default={})
        producer = graph.producer(aid)
        node = producer.node_id if producer else "?"
        for split, anomalies in found.items():
            for item in payloads.anomaly_list(anomalies):
                rows.append(
                    [
                        escape(node),
                        escape(split),
                        f'<b class="anomaly">{escape(item["feature"])}</b>',
                        escape(item["severity"]),
                        escape(item["short"]),
                        escape(item["description"]),
                    ]
                )
    if not rows:
        return '<p class="good" id="no-anomalies">No anomalies: the data matches the schema.</p>'
    return _table(
        ["From", "Split", "Feature", "Severity", "Anomaly", "Description"],
        rows,
        id="anomalies-table",
    )


def _metrics(graph: Graph, execs: list[Execution], blessed: bool | None) -> str:
    ids = _outputs_of(graph, execs, "ModelEvaluation")
    if not ids:
        return '<p class="muted">This run recorded no model evaluation (no Evaluator ran).</p>'
    evaluation = payloads.safe(tfma.load_evaluation, graph.artifacts[ids[0]].uri)
    if evaluation is None:
        return '<p class="muted">The evaluation files could not be read.</p>'
    candidate, baseline = evaluation.candidate(), evaluation.baseline()
    parts = [
        f"<p>Blessing: {_badge(blessed_text(blessed))}"
        + (
            f" · validation {'passed' if evaluation.validation_ok else 'FAILED'}"
            if evaluation.validation_ok is not None
            else ""
        )
        + "</p>"
    ]
    if evaluation.failures:
        parts.append(
            '<ul class="anomaly">'
            + "".join(f"<li>{escape(f)}</li>" for f in evaluation.failures)
            + "</ul>"
        )
    slices = sorted(set(candidate) | set(baseline), key=lambda s: (s != "Overall", s))
    rows = []
    for slice_name in slices:
        cand = candidate.get(slice_name, {})
        base = baseline.get(slice_name, {})
        for metric in sorted(set(cand) | set(base)):
            c, b = cand.get(metric), base.get(metric)
            delta = evaluation.diffs.get(slice_name, {}).get(metric)
            if delta is None and c is not None and b is not None:
                delta = c - b
            css = "" if not delta else ("delta-up" if delta > 0 else "delta-down")
            rows.append(
                [
                    escape(slice_name),
                    escape(metric),
                    number(c),
                    number(b),
                    f'<span class="{css}">{signed(delta)}</span>',
                ]
            )
    parts.append(
        _table(
            ["Slice", "Metric", "Candidate", "Baseline", "Δ vs baseline"],
            rows,
            numeric={2, 3, 4},
            id="metrics-table",
        )
    )
    if not baseline:
        parts.append('<p class="muted">No baseline model yet (first blessed model).</p>')
    return "".join(parts)


def _lineage(graph: Graph, execs: list[Execution]) -> str:
    boxes: dict[str, Box] = {}
    edges: list[tuple[str, str]] = []
    for ex in execs:
        eid = f"e{ex.id}"
        boxes[eid] = Box(
            eid, ex.node_id, f"#{ex.id} {ex.state.lower()}", f"state-{ex.state}", ex.type
        )
        for key, ids in ex.inputs.items():
            for aid in ids:
                art = graph.artifacts.get(aid)
                if art is None:
                    continue
                aid_s = f"a{aid}"
                if aid_s not in boxes:
                    producer = graph.producer(aid)
                    css = "artifact baseline" if key in BASELINE_KEYS else "artifact"
                    sub = f"#{aid}" + (
                        f" from {producer.run_id[-15:]}"
                        if producer and producer.run_id not in {e.run_id for e in execs}
                        else ""
                    )
                    boxes[aid_s] = Box(aid_s, art.type, sub, css, art.uri)
                edges.append((aid_s, eid))
        for aid in ex.output_ids():
            art = graph.artifacts.get(aid)
            if art is None:
                continue
            aid_s = f"a{aid}"
            sub = f"#{aid}"
            if art.type == "PushedModel" and art.prop("pushed"):
                sub += f" v{art.prop('pushed_version')}"
            elif art.type == "ModelBlessing" and art.prop("blessed") is not None:
                sub += " blessed" if art.prop("blessed") else " NOT blessed"
            boxes[aid_s] = Box(aid_s, art.type, sub, "artifact", art.uri)
            edges.append((eid, aid_s))
        if is_example_gen(ex):
            source = source_data(ex, original(graph, ex))
            names = {f.path for f in source.files} or {source.input_base}
            for path in sorted(names):
                sid = f"f{path}"
                boxes[sid] = Box(sid, os.path.basename(path) or path, "source file", "source", path)
                edges.append((sid, eid))
    return dag_svg(
        list(boxes.values()), edges, box_w=150, box_h=40, gap_x=40, element_id="lineage-svg"
    )


def _sources(graph: Graph, execs: list[Execution]) -> str:
    rows = []
    for ex in execs:
        if not is_example_gen(ex):
            continue
        source = source_data(ex, original(graph, ex))
        for item in source.files:
            status = source.unchanged_since_run.get(item.split)
            rows.append(
                [
                    f"<code>{escape(item.path)}</code>",
                    str(item.bytes if item.bytes is not None else "-"),
                    f"<code>{escape((item.sha256 or '-')[:16])}</code>",
                    {
                        True: "unchanged since run",
                        False: '<b class="anomaly">changed since run</b>',
                    }.get(status, "-"),
                ]
            )
    if not rows:
        return ""
    return "<h3>Source files</h3>" + _table(
        ["File", "Bytes", "SHA-256", "Status"], rows, numeric={1}, id="sources-table"
    )


# ---------------------------------------------------------------- page


def render_report(graph: Graph, run: Run, extra_sections: tuple[str, ...] = ()) -> str:
    """The report of `run` as one HTML document (`extra_sections`: HTML appended, e.g.
    monitoring)."""
    execs = graph.run_executions(run.id)
    summary = summarize(graph, run)
    dag, _ = _dag(graph, execs)
    cards = [
        ("State", _badge(summary.state)),
        ("Started", escape(when(summary.start_ms))),
        ("Duration", escape(duration(summary.duration_s))),
        ("Executed", str(summary.executed)),
        ("Cached", str(summary.cached)),
        ("Failed", str(summary.failed)),
        ("Blessed", _badge(blessed_text(summary.blessed))),
        ("Pushed version", escape(summary.pushed_version or "-")),
    ]
    card_html = "".join(
        f'<div class="card"><span class="muted">{k}</span><b>{v}</b></div>' for k, v in cards
    )
    title = f"{run.pipeline} · run {run.id}"
    body = [
        f'<header id="summary"><h1>{escape(title)}</h1>',
        f'<p class="muted">Beamline run report · metadata store <code>{escape(graph.source)}</code>'
        + (f" · {escape(summary.reason)}" if summary.reason else "")
        + "</p>",
        f'<div class="cards" id="cards">{card_html}</div></header>',
        '<section id="dag"><h2>Pipeline</h2>'
        '<p class="muted">Green: executed · blue: from cache · red: failed. '
        "Hover a node for details.</p>",
        f'<div class="scroll">{dag}</div>',
        _nodes_table(graph, execs),
        "</section>",
        '<section id="statistics"><h2>Data statistics (TFDV)</h2>',
        _statistics(graph, execs),
        "</section>",
        '<section id="anomalies"><h2>Anomalies</h2>',
        _anomalies(graph, execs),
        "</section>",
        '<section id="metrics"><h2>Model evaluation (TFMA)</h2>',
        _metrics(graph, execs, summary.blessed),
        "</section>",
        '<section id="lineage"><h2>Lineage</h2>'
        '<p class="muted">Source files → executions → artifacts. Dashed yellow: the baseline '
        "model compared with. Artifacts from earlier runs were reused from the cache.</p>",
        f'<div class="scroll">{_lineage(graph, execs)}</div>',
        _sources(graph, execs),
        "</section>",
        *extra_sections,
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )


def report_json(graph: Graph, run: Run) -> dict[str, Any]:
    """What the report shows, for scripts (`beamline report --json`)."""
    return summarize(graph, run).to_json()
