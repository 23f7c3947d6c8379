"""`beamline lineage` shows which monitoring executions watched a model ("monitored by")."""

from __future__ import annotations

from typing import Any

from beamline.monitor.record import MonitoringRecord, monitored_by
from beamline.timefmt import format_secs


def _records(store, artifact_ids: list[int]) -> list[MonitoringRecord]:
    return sorted(monitored_by(store, artifact_ids), key=lambda r: r.execution_id)


def monitored_by_json(store, artifact_ids: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "execution_id": r.execution_id,
            "model_name": r.model_name,
            "version": r.version,
            "first_request": format_secs(r.first_secs),
            "last_request": format_secs(r.last_secs),
            "requests": r.requests,
            "verdict": r.verdict,
            "crossed": r.crossed,
        }
        for r in _records(store, artifact_ids)
    ]


def monitored_by_text(store, artifact_ids: list[int]) -> str:
    """A "Monitored by" section (empty when nothing monitored the artifacts)."""
    records = _records(store, artifact_ids)
    if not records:
        return ""
    lines = ["", "", "Monitored by:"]
    for r in records:
        crossed = f" ({', '.join(r.crossed)})" if r.crossed else ""
        lines.append(
            f"  monitoring execution #{r.execution_id}: version {r.version}, {r.requests} "
            f"request row(s) {format_secs(r.first_secs)} .. {format_secs(r.last_secs)}: "
            f"{r.verdict}{crossed}"
        )
    return "\n".join(lines)
