"""The labels a pushed version held and when, for `beamline lineage VERSION`."""

from __future__ import annotations

from beamline.lineage.model import Artifact, Graph
from beamline.metadata import labels as history
from beamline.metadata import run_context as rc
from beamline.timefmt import format_ms


def label_periods(graph: Graph, store, artifacts: list[Artifact]) -> list[dict]:
    """[{label, since_ms, until_ms, how, ended_by, reason}] of the pushed version among
    `artifacts` (none for other targets)."""
    for art in artifacts:
        push = rc.push_from(art.properties) if art.type == rc.PUSHED_MODEL_TYPE else None
        producer = graph.producer(art.id)
        if push is None or producer is None or not str(push[0]).isdigit():
            continue
        return history.version_periods(history.history(store, producer.pipeline), int(push[0]))
    return []


def label_periods_text(periods: list[dict]) -> str:
    if not periods:
        return ""
    lines = ["", "Labels held:"]
    for p in periods:
        until = (f"until {format_ms(p['until_ms'])} ({p['ended_by']})" if p["until_ms"]
                 else "now")
        lines.append(f"  {p['label']:<10} from {format_ms(p['since_ms'])} ({p['how']}) {until}")
    return "\n".join(lines) + "\n"
