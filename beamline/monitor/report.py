"""The monitoring section of `beamline report`: every monitoring window of the run's model, its
per-feature verdicts, and the training / window / previous-window histograms side by side."""

from __future__ import annotations

from html import escape
from typing import Any

from beamline.lineage.model import Graph, Run
from beamline.monitor.record import MonitoringRecord, monitored_by
from beamline.report.svg import histogram_svg
from beamline.timefmt import format_secs

WATCHED_TYPES = ("Model", "PushedModel")
SHORT = {"infinity_norm": "L-inf", "jensen_shannon_divergence": "JSD"}


def run_monitoring(store, graph: Graph, run: Run) -> list[MonitoringRecord]:
    """Monitoring executions that watched the model this run trained or pushed."""
    ids = [
        aid
        for ex in graph.run_executions(run.id)
        for aid in ex.output_ids()
        if aid in graph.artifacts and graph.artifacts[aid].type in WATCHED_TYPES
    ]
    return sorted(monitored_by(store, ids), key=lambda r: r.execution_id)


def _measure(data: dict[str, Any] | None) -> str:
    if not data:
        return '<span class="muted">-</span>'
    crossed = data["value"] > data["threshold"]
    text = (
        f"{SHORT.get(data['measure'], data['measure'])} {data['value']:.3f} / {data['threshold']:g}"
    )
    return f'<span class="anomaly">{escape(text)}</span>' if crossed else escape(text)


def _histograms(histograms: dict[str, list]) -> str:
    cells = []
    for name in ("training", "window", "previous"):
        buckets = histograms.get(name)
        if buckets:
            labels = ", ".join(f"{b[0]}: {b[1]:.2f}" for b in buckets)
            cells.append(
                f'<figure title="{escape(labels)}" style="display:inline-block;margin:0 8px 0 0">'
                f"{histogram_svg([b[1] for b in buckets], width=110, height=30)}"
                f'<figcaption class="muted">{name}</figcaption></figure>'
            )
    return "".join(cells)


def monitoring_section(records: list[MonitoringRecord]) -> str:
    """HTML for the report (a note when nothing monitored the model)."""
    out = ['<section id="monitoring"><h2>Monitoring (served traffic)</h2>']
    if not records:
        out.append(
            '<p class="muted">No monitoring window recorded for this run\'s model: serve it '
            "with --request_log_dir, then run <code>beamline monitor</code>.</p></section>"
        )
        return "".join(out)
    out.append(
        '<p class="muted">Skew: logged inputs vs the training statistics; drift: vs the previous '
        "window. Red: past the threshold.</p>"
    )
    for r in records:
        verdict = "b-NO" if r.crossed else "b-yes"
        out.append(
            f"<h3>Execution #{r.execution_id} · version {r.version} · {r.requests} rows · "
            f"{escape(format_secs(r.first_secs))} .. {escape(format_secs(r.last_secs))} "
            f'<span class="badge {verdict}">{escape(r.verdict)}</span></h3>'
        )
        rows = []
        for f in r.result.get("features", []):
            rows.append(
                "<tr>"
                f"<td>{escape(f['feature'])}</td><td>{_measure(f.get('skew'))}</td>"
                f"<td>{_measure(f.get('drift'))}</td>"
                f"<td>{escape('; '.join(f.get('schema') or []) or 'ok')}</td>"
                f"<td>{'CROSSED' if f.get('crossed') else 'ok'}</td>"
                f"<td>{_histograms(f.get('histograms') or {})}</td></tr>"
            )
        out.append(
            f'<table class="monitoring" id="monitoring-{r.execution_id}"><thead><tr>'
            "<th>Feature</th><th>Skew vs training</th><th>Drift vs previous</th><th>Schema</th>"
            "<th>Verdict</th><th>Histograms (training · window · previous)</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    out.append("</section>")
    return "".join(out)
