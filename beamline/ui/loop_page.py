"""Models and the loop, per pipeline: its versions and their labels, a metric over runs (blessed,
pushed and labelled versions marked), and the monitoring windows over time per feature against
their thresholds, with the retrain triggers they caused."""

from __future__ import annotations

import time
from html import escape

from beamline.lineage import payloads, tfma
from beamline.lineage.format import blessed_text, when
from beamline.lineage.model import Graph, outputs_of_type
from beamline.lineage.runs import RunSummary, summarize
from beamline.loop.triggers import TriggerRecord
from beamline.metadata import records
from beamline.metadata.labels import LabelChange
from beamline.metadata.labels import holders as current_labels
from beamline.metrics import headline, value_range
from beamline.report.page import badge, table
from beamline.report.sections import direction
from beamline.report.svg import Point, Series, line_chart_svg
from beamline.ui.layout import experiments_url, model_url, page, pipeline_url, run_url, url
from beamline.ui.model_page import label_table, pushed_models

# Evaluations read for the metric chart (newest runs first): each is a TFMA file read.
MAX_EVALUATED_RUNS = 60


def _ms_text(value: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(value / 1000))


def _versions(
    graph: Graph, pipeline: str, changes: list[LabelChange], summaries: dict[str, RunSummary]
) -> str:
    held = current_labels(changes)
    by_version: dict[int, list[str]] = {}
    for label, version in held.items():
        by_version.setdefault(version, []).append(label)
    ever = {c.to_version for c in changes}
    rows = []
    for art in reversed(pushed_models(graph, pipeline)):
        version = str(art.prop("pushed_version"))
        producer = graph.producer(art.id)
        summary = summaries.get(producer.run_id) if producer else None
        number = int(version) if version.isdigit() else records.NO_VERSION
        labels = " ".join(badge(lbl) for lbl in sorted(by_version.get(number, [])))
        rows.append(
            [
                f'<a href="{escape(model_url(pipeline, version))}">'
                f"<code>{escape(version)}</code></a>",
                f'<a href="{escape(run_url(producer.run_id))}"><code>{escape(producer.run_id)}'
                "</code></a>"
                if producer
                else "-",
                escape(when(art.create_ms)),
                escape(summary.span or "-") if summary else "-",
                badge(blessed_text(summary.blessed)) if summary else "-",
                labels
                or ('<span class="muted">(labelled before)</span>' if number in ever else "-"),
            ]
        )
    if not rows:
        return '<p class="muted" id="no-versions">No run of this pipeline pushed a model yet.</p>'
    return table(
        ["Version", "Run", "Pushed", "Span", "Blessed", "Labels now"], rows, id="versions-table"
    )


def _metric_chart(
    graph: Graph,
    pipeline: str,
    changes: list[LabelChange],
    metric: str | None,
    summaries: dict[str, RunSummary],
):
    labelled = {c.to_version for c in changes}
    values: list[tuple[int, str, dict, bool | None, str | None]] = []
    # Only runs that output an evaluation (one pass over the artifacts, not over every run).
    evaluated = {
        ex.run_id
        for art in graph.artifacts.values()
        if art.type == "ModelEvaluation"
        for ex in graph.output_events(art.id)
    }
    for run in reversed(graph.sorted_runs(pipeline)):
        if len(values) >= MAX_EVALUATED_RUNS:
            break
        if run.id not in evaluated:
            continue
        execs = graph.run_executions(run.id)
        ids = outputs_of_type(graph, execs, "ModelEvaluation")
        if not ids:
            continue
        evaluation = payloads.safe(tfma.load_evaluation, graph.artifacts[ids[0]].uri)
        overall = evaluation.candidate().get("Overall", {}) if evaluation else {}
        if overall:
            s = summaries[run.id]
            values.append((s.start_ms, run.id, overall, s.blessed, s.pushed_version))
    names = sorted({m for _, _, overall, _, _ in values for m in overall})
    if not names:
        return (
            '<p class="muted" id="no-metrics">No evaluated runs yet: this pipeline has no '
            "Evaluator output to chart.</p>"
        )
    if metric in names:
        chosen = metric
    else:
        first = headline({name: 0.0 for name in names})
        chosen = first[0] if first else names[0]
    points = []
    for start, run_id, overall, blessed, pushed in values:
        if chosen not in overall:
            continue
        marks = []
        if blessed:
            marks.append("blessed")
        if pushed:
            marks.append("pushed")
        if pushed and pushed.isdigit() and int(pushed) in labelled:
            marks.append("labelled")
        points.append(
            Point(
                start,
                overall[chosen],
                f"{run_id}: {chosen} {overall[chosen]:.4g} " + " ".join(marks),
                " ".join(marks),
                run_url(run_id),
            )
        )
    picker = "".join(
        f'<a href="{escape(url(pipeline_url(pipeline), metric=m))}">{escape(m)}</a> ' for m in names
    )
    better = direction(chosen)
    return (
        line_chart_svg(
            [Series(chosen, points)],
            width=760,
            x_times=True,
            bounds=value_range(chosen),
            element_id="metric-svg",
            y_label=f"{chosen} ({better})" if better else chosen,
        )
        + '<p class="legend muted"><span>● filled green: blessed</span><span>● blue: pushed'
        "</span><span>◯ purple ring: labelled</span></p>"
        f'<p class="muted">Metric: {picker}</p>'
    )


def _monitoring(records_: list, triggers: list[TriggerRecord]) -> str:
    if not records_:
        return (
            '<p class="muted" id="no-monitoring">No monitoring windows yet: serve a version with '
            "--request_log_dir and run <code>beamline monitor</code>.</p>"
        )
    caused = {t.monitor_execution_id: t for t in triggers}
    features: dict[str, dict[str, list[Point]]] = {}
    limits: dict[str, dict[str, float]] = {}
    for r in records_:
        trigger = caused.get(r.execution_id)
        for f in r.result.get("features", []):
            for kind in ("skew", "drift"):
                data = f.get(kind)
                if not data:
                    continue
                crossed = data["value"] > data["threshold"]
                css = ("crossed " if crossed else "") + ("trigger" if trigger else "")
                label = (
                    f"{f['feature']} {kind} {data['value']:.3f} (threshold {data['threshold']:g}) "
                    f"window ending {_ms_text(r.last_secs * 1000)}, execution #{r.execution_id}"
                    + (f"; caused: {trigger.decision}" if trigger else "")
                )
                features.setdefault(f["feature"], {}).setdefault(kind, []).append(
                    Point(r.last_secs * 1000, float(data["value"]), label, css.strip())
                )
                limits.setdefault(f["feature"], {})[kind] = float(data["threshold"])
    out = []
    for name in sorted(features):
        kinds = features[name]
        threshold = max(limits[name].values()) if limits[name] else None
        series = [Series(kind, pts, kind) for kind, pts in sorted(kinds.items())]
        out.append(
            f'<figure class="monitor-chart" data-feature="{escape(name)}"><figcaption>'
            f"<b>{escape(name)}</b>: skew (blue) and drift (yellow) per window, dashed: "
            f"threshold</figcaption>"
            + line_chart_svg(series, width=560, height=170, threshold=threshold, x_times=True)
            + "</figure>"
        )
    return f'<div class="cards">{"".join(out)}</div>'


def _triggers(triggers: list[TriggerRecord]) -> str:
    if not triggers:
        return (
            '<p class="muted" id="no-triggers">No loop triggers yet (<code>beamline loop</code> '
            "records them).</p>"
        )
    rows = [
        [
            escape(when(t.time_ms)),
            escape(t.kind),
            badge(t.decision),
            escape(t.reason)
            + (f'<div class="canary-review">canary: {escape(t.canary_review)}</div>'
               if t.canary_review else ""),
            f"#{t.monitor_execution_id}" if t.monitor_execution_id is not None else "-",
            f'<a href="{escape(run_url(t.run_id))}"><code>{escape(t.run_id)}</code></a>'
            if t.run_id
            else "-",
        ]
        for t in reversed(triggers)
    ]
    return table(
        ["When", "Kind", "Decision", "Reason", "Monitoring", "Run started"],
        rows,
        id="triggers-table",
    )


def _label_history(changes: list[LabelChange], pipeline: str) -> str:
    if not changes:
        return '<p class="muted" id="no-label-history">No label history yet.</p>'
    return label_table(changes, pipeline, "label-history")


def render(
    graph: Graph,
    pipeline: str,
    changes: list[LabelChange],
    triggers: list[TriggerRecord],
    monitoring: list,
    summaries: list[RunSummary],
    metric: str | None = None,
    canary: str = "",
) -> str:
    """`summaries`: the pipeline's run summaries (Reader.summaries); `canary`: the "Canary
    against stable" section's HTML (beamline.ui.canary_view)."""
    by_run = {s.run_id: s for s in summaries}
    body = (
        f"<h1>{escape(pipeline)}: models and the loop</h1>"
        f'<p class="muted"><a href="{escape(url("/", pipeline=pipeline))}">its runs</a> · '
        f'<a id="experiments-link" href="{escape(experiments_url(pipeline))}">its experiments'
        "</a></p>"
        '<section id="versions"><h2>Versions</h2>'
        + _versions(graph, pipeline, changes, by_run)
        + '</section><section id="canary"><h2>Canary against stable</h2>'
        + canary
        + '</section><section id="metric"><h2>A metric over runs</h2>'
        + _metric_chart(graph, pipeline, changes, metric, by_run)
        + '</section><section id="monitoring"><h2>Monitoring windows</h2>'
        + _monitoring(monitoring, triggers)
        + '</section><section id="triggers"><h2>Loop triggers</h2>'
        + _triggers(triggers)
        + '</section><section id="label-changes"><h2>Label history</h2>'
        + _label_history(changes, pipeline)
        + "</section>"
    )
    return page(f"{pipeline} · models and the loop", body, graph.source)


def render_index(graph: Graph, changes: list[LabelChange]) -> str:
    rows = []
    for pipeline in graph.pipelines():
        runs = graph.sorted_runs(pipeline)
        latest = summarize(graph, runs[-1]) if runs else None
        held = current_labels([c for c in changes if c.pipeline == pipeline])
        rows.append(
            [
                f'<a href="{escape(pipeline_url(pipeline))}">{escape(pipeline)}</a>',
                str(len(runs)),
                badge(latest.state) if latest else "-",
                escape(when(latest.start_ms)) if latest else "-",
                " ".join(f"{badge(k)} {v}" for k, v in sorted(held.items())) or "-",
            ]
        )
    body = "<h1>Pipelines</h1>" + (
        table(["Pipeline", "Runs", "Latest run", "Started", "Labels"], rows, id="pipelines-table")
        if rows
        else '<p class="muted" id="empty-store">The store holds no runs yet.</p>'
    )
    return page("Beamline · pipelines", body, graph.source)
