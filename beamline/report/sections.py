"""The sections of a run's page, shared by the static report and `beamline ui`: the DAG with
node states, the node table, the Gantt timeline with its critical path, TFDV statistics and
anomalies, TFMA metrics and the lineage graph back to the source files. Pure functions: a Graph
in, HTML out."""

from __future__ import annotations

import os
from html import escape

from beamline.lineage import payloads, tfma
from beamline.lineage.format import blessed_text, duration, number, signed, when
from beamline.lineage.model import CACHED, Execution, Graph, outputs_of_type
from beamline.lineage.runs import RunSummary
from beamline.lineage.sources import is_example_gen, source_data
from beamline.lineage.trace import BASELINE_KEYS
from beamline.lineage.why import original
from beamline.metrics import EXAMPLE_COUNT, higher_is_better, improved
from beamline.report.page import badge, table
from beamline.report.svg import Bar, Box, bars_svg, dag_svg, gantt_svg, histogram_svg


def outputs_of(graph: Graph, execs: list[Execution], type_name: str) -> list[int]:
    return outputs_of_type(graph, execs, type_name)


# ---------------------------------------------------------------- sections


def node_edges(execs: list[Execution]) -> list[tuple[str, str]]:
    """(upstream node, downstream node) pairs: a node consumed an artifact the other output."""
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
    return edges


def dag(graph: Graph, execs: list[Execution]) -> tuple[str, list[tuple[str, str]]]:
    """The run's DAG, each node coloured by its state; (svg, node edges)."""
    edges = node_edges(execs)
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


def nodes_table(graph: Graph, execs: list[Execution]) -> str:
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
                badge(ex.state),
                duration(ex.duration_s),
                f"#{ex.id}",
                outputs,
                reused,
            ]
        )
    return table(
        ["Node", "Component", "State", "Duration", "Execution", "Outputs", "Reused"],
        rows,
        numeric={3},
        id="nodes-table",
    )


def statistics(graph: Graph, execs: list[Execution]) -> str:
    stats_ids = outputs_of(graph, execs, "ExampleStatistics")
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
                table(
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
                table(
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


def anomalies(graph: Graph, execs: list[Execution]) -> str:
    ids = outputs_of(graph, execs, "ExampleAnomalies")
    if not ids:
        return '<p class="muted">This run recorded no ExampleAnomalies.</p>'
    rows = [
        [
            escape(item["node"]),
            escape(item["split"]),
            f'<b class="anomaly">{escape(item["feature"])}</b>',
            escape(item["severity"]),
            escape(item["short"]),
            escape(item["description"]),
        ]
        for item in payloads.recorded_anomalies(graph, ids)
    ]
    if not rows:
        return '<p class="good" id="no-anomalies">No anomalies: the data matches the schema.</p>'
    return table(
        ["From", "Split", "Feature", "Severity", "Anomaly", "Description"],
        rows,
        id="anomalies-table",
    )


def direction(metric: str) -> str:
    """Which way a metric is better, as a reader is told ("" for the example count)."""
    if metric == EXAMPLE_COUNT:
        return ""
    return "higher is better" if higher_is_better(metric) else "lower is better"


def metric_name(metric: str) -> str:
    """A metric's name, saying so when lower is better (RMSE, MAE, the loss)."""
    if direction(metric) != "lower is better":
        return escape(metric)
    return f'{escape(metric)} <span class="muted">(lower is better)</span>'


def metric_rows(evaluation: tfma.Evaluation) -> list[list[str]]:
    """The metrics table's rows: each slice's metrics, candidate against baseline, the delta
    marked better or worse by the metric's own direction (a falling RMSE is better)."""
    candidate, baseline = evaluation.candidate(), evaluation.baseline()
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
            better = improved(metric, delta)
            css = "" if better is None else ("delta-better" if better else "delta-worse")
            rows.append(
                [
                    escape(slice_name),
                    metric_name(metric),
                    number(c),
                    number(b),
                    f'<span class="{css}">{signed(delta)}</span>',
                ]
            )
    return rows


def metrics(graph: Graph, execs: list[Execution], blessed: bool | None) -> str:
    ids = outputs_of(graph, execs, "ModelEvaluation")
    if not ids:
        return '<p class="muted">This run recorded no model evaluation (no Evaluator ran).</p>'
    evaluation = payloads.safe(tfma.load_evaluation, graph.artifacts[ids[0]].uri)
    if evaluation is None:
        return '<p class="muted">The evaluation files could not be read.</p>'
    candidate, baseline = evaluation.candidate(), evaluation.baseline()
    parts = [
        f"<p>Blessing: {badge(blessed_text(blessed))}"
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
    rows = metric_rows(evaluation)
    parts.append(
        table(
            ["Slice", "Metric", "Candidate", "Baseline", "Δ vs baseline"],
            rows,
            numeric={2, 3, 4},
            id="metrics-table",
        )
    )
    if not baseline:
        parts.append('<p class="muted">No baseline model yet (first blessed model).</p>')
    parts.append(slice_charts(candidate))
    return "".join(parts)


def slice_charts(candidate: dict[str, dict[str, float]], limit: int = 6) -> str:
    """One bar chart per metric: its value in every slice (the candidate model)."""
    names = sorted({m for values in candidate.values() for m in values})[:limit]
    slices = sorted(candidate, key=lambda s: (s != "Overall", s))
    charts = []
    for metric in names:
        rows = [(s, candidate[s][metric], None, "") for s in slices if metric in candidate[s]]
        charts.append(
            f'<figure class="slice-chart" data-metric="{escape(metric)}"><figcaption>'
            f"{escape(metric)} per slice</figcaption>{bars_svg(rows)}</figure>"
        )
    return f'<div class="cards" id="slice-charts">{"".join(charts)}</div>' if charts else ""


def lineage(graph: Graph, execs: list[Execution], element_id: str = "lineage-svg") -> str:
    """Source files -> executions -> artifacts of `execs` (a run's, or a model's upstream)."""
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
        list(boxes.values()), edges, box_w=150, box_h=40, gap_x=40, element_id=element_id
    )


def sources(graph: Graph, execs: list[Execution]) -> str:
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
    return "<h3>Source files</h3>" + table(
        ["File", "Bytes", "SHA-256", "Status"], rows, numeric={1}, id="sources-table"
    )


# An upstream node that ended this close to the latest blocker counts as the blocker.
CRITICAL_SLACK_MS = 1000


def critical_path(execs: list[Execution], edges: list[tuple[str, str]]) -> list[int]:
    """Execution ids of the chain that set the run's length: from the execution that ended last,
    back to what it waited for, the execution that ended last before it started (an upstream node
    when one ended within CRITICAL_SLACK_MS of that: a dependency, else a runner slot)."""
    if not execs:
        return []
    preds: dict[str, set[str]] = {}
    for a, b in edges:
        preds.setdefault(b, set()).add(a)
    current = max(execs, key=lambda e: (e.end_ms, e.id))
    path = [current.id]
    while True:
        before = [e for e in execs if e.id not in path and e.end_ms <= current.start_ms + 50]
        if not before:
            break
        latest = max(e.end_ms for e in before)
        upstream = [
            e
            for e in before
            if e.node_id in preds.get(current.node_id, ())
            and e.end_ms >= latest - CRITICAL_SLACK_MS
        ]
        current = max(upstream or before, key=lambda e: (e.end_ms, e.id))
        path.append(current.id)
    return list(reversed(path))


def timeline(execs: list[Execution], edges: list[tuple[str, str]]) -> str:
    """A Gantt chart of the executions in start order (MLMD's create and last-update times),
    the critical path outlined."""
    critical = set(critical_path(execs, edges))
    bars = [
        Bar(
            str(ex.id),
            ex.node_id,
            ex.start_ms,
            max(ex.end_ms, ex.start_ms),
            f"state-{ex.state}",
            f"{ex.node_id} #{ex.id}: {ex.state}, {duration(ex.duration_s)}"
            + (" (critical path)" if ex.id in critical else ""),
            ex.id in critical,
        )
        for ex in sorted(execs, key=lambda e: (e.start_ms, e.id))
    ]
    names = " → ".join(ex.node_id for ex in execs if ex.id in critical)
    note = (
        f'<p class="muted" id="critical-path">Critical path: {escape(names)}</p>' if names else ""
    )
    return f'<div class="scroll">{gantt_svg(bars, element_id="gantt-svg")}</div>{note}'


def summary_cards(summary: RunSummary) -> str:
    """The run's state, times, cache use, blessing and push as a row of cards."""
    cards = [
        ("State", badge(summary.state)),
        ("Started", escape(when(summary.start_ms))),
        ("Duration", escape(duration(summary.duration_s))),
        ("Executed", str(summary.executed)),
        ("Cached", str(summary.cached)),
        ("Failed", str(summary.failed)),
        ("Blessed", badge(blessed_text(summary.blessed))),
        ("Pushed version", escape(summary.pushed_version or "-")),
    ]
    return "".join(
        f'<div class="card" data-card="{k.lower()}"><span class="muted">{k}</span><b>{v}</b></div>'
        for k, v in cards
    )
