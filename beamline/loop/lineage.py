"""`beamline lineage` and `runs`: which loop decision started a run, and why."""

from __future__ import annotations

from typing import Any

from beamline.lineage.model import Graph
from beamline.loop.triggers import TriggerRecord, trigger_by_id
from beamline.metadata import run_context as rc


def _runs_of(graph: Graph, artifact_ids: list[int]) -> list[str]:
    runs = []
    for aid in artifact_ids:
        producer = graph.producer(aid)
        if producer is not None and producer.run_id not in runs:
            runs.append(producer.run_id)
    return runs


def triggers_of(store, graph: Graph, artifact_ids: list[int]) -> list[TriggerRecord]:
    """The Trigger executions that started the runs which produced the artifacts."""
    found = []
    for run_id in _runs_of(graph, artifact_ids):
        run = graph.runs.get(run_id)
        value = run.properties.get(rc.TRIGGER_EXECUTION_ID) if run is not None else None
        if value is None:
            continue
        trigger = trigger_by_id(store, int(value))
        if trigger is not None:
            found.append(trigger)
    return found


def describe(trigger: TriggerRecord) -> str:
    source = (
        f"monitoring #{trigger.monitor_execution_id}"
        if trigger.monitor_execution_id is not None and trigger.kind == "drift"
        else trigger.kind or "the loop"
    )
    # The outcome names the run ("run ID: blessed and pushed as version N ...").
    what = trigger.outcome or f"run {trigger.run_id}"
    return f"Triggered by {source}: {trigger.reason} (loop trigger #{trigger.execution_id}: {what})"


def triggered_by_text(store, graph: Graph, artifact_ids: list[int]) -> str:
    found = triggers_of(store, graph, artifact_ids)
    return "".join(f"\n\n{describe(t)}" for t in found)


def triggered_by_json(store, graph: Graph, artifact_ids: list[int]) -> list[dict[str, Any]]:
    return [t.__dict__ for t in triggers_of(store, graph, artifact_ids)]
