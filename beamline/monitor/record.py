"""Monitoring executions in ML Metadata: written once, atomically, and read back.

One `beamline.Monitor` execution per monitored model version and window, in a
`beamline_monitoring` context named after the pipeline (not a pipeline run: `runs` and the run
graph stay about pipeline runs). Its INPUT events point at the model, the pushed model, the
training statistics, the schema and the previous window's statistics it compared; its OUTPUT
events at the window's statistics (an ExampleStatistics artifact, split `serving`) and the
result. `put_execution` writes all of it in one transaction: nothing half-written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EXECUTION_TYPE = "beamline.Monitor"
CONTEXT_TYPE = "beamline_monitoring"
RESULT_TYPE = "MonitoringResult"
STATISTICS_TYPE = "ExampleStatistics"
SERVING_SPLIT = "serving"

INPUT_KEYS = ("model", "pushed_model", "statistics", "schema", "previous_statistics")


@dataclass
class MonitoringRecord:
    """What a monitoring execution holds, read back from the store."""

    execution_id: int
    pipeline: str
    model_name: str
    version: int
    first_secs: int
    last_secs: int
    requests: int
    verdict: str
    crossed: list[str]
    statistics_uri: str | None
    result: dict[str, Any]
    create_ms: int


def _artifact_type_id(store, name: str) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    try:
        return store.get_artifact_type(name).id
    except Exception:  # noqa: BLE001 - MLMD raises NotFoundError; register the type
        return store.put_artifact_type(pb.ArtifactType(name=name))


def _ensure_types(store) -> tuple[int, int, int]:
    from ml_metadata.proto import metadata_store_pb2 as pb

    execution_type = store.put_execution_type(pb.ExecutionType(name=EXECUTION_TYPE))
    context_type = store.put_context_type(pb.ContextType(name=CONTEXT_TYPE))
    return execution_type, context_type, _artifact_type_id(store, RESULT_TYPE)


def _event(kind, key: str):
    from ml_metadata.proto import metadata_store_pb2 as pb

    event = pb.Event(type=kind)
    event.path.steps.add().key = key
    event.path.steps.add().index = 0
    return event


def record_monitoring(
    store,
    pipeline: str,
    inputs: dict[str, int],
    statistics_uri: str,
    result_uri: str,
    summary: dict[str, Any],
) -> int:
    """Writes one monitoring execution with its events and output artifacts; returns its id.

    `inputs` maps INPUT_KEYS to existing artifact ids; `summary` holds model_name, version,
    first_secs, last_secs, requests, verdict, crossed, and the full result JSON."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    execution_type, context_type, result_type = _ensure_types(store)
    execution = pb.Execution(type_id=execution_type, last_known_state=pb.Execution.COMPLETE)
    props = execution.custom_properties
    props["pipeline"].string_value = pipeline
    props["model_name"].string_value = summary["model_name"]
    props["model_version"].int_value = int(summary["version"])
    props["first_request_secs"].int_value = int(summary["first_secs"])
    props["last_request_secs"].int_value = int(summary["last_secs"])
    props["requests"].int_value = int(summary["requests"])
    props["verdict"].string_value = summary["verdict"]
    props["crossed"].string_value = ",".join(summary["crossed"])
    props["invalid_rows"].int_value = int(summary.get("invalid_rows", 0))
    props["result"].string_value = json.dumps(summary["result"], default=str)

    statistics = pb.Artifact(
        type_id=_artifact_type_id(store, STATISTICS_TYPE),
        uri=statistics_uri,
        state=pb.Artifact.LIVE,
    )
    statistics.custom_properties["split_names"].string_value = json.dumps([SERVING_SPLIT])
    result = pb.Artifact(type_id=result_type, uri=result_uri, state=pb.Artifact.LIVE)
    result.custom_properties["verdict"].string_value = summary["verdict"]

    existing = store.get_artifacts_by_id(sorted(set(inputs.values())))
    by_id = {a.id: a for a in existing}
    pairs = [
        (by_id[aid], _event(pb.Event.INPUT, key)) for key, aid in inputs.items() if aid in by_id
    ]
    pairs += [
        (statistics, _event(pb.Event.OUTPUT, "serving_statistics")),
        (result, _event(pb.Event.OUTPUT, "result")),
    ]
    context = store.get_context_by_type_and_name(CONTEXT_TYPE, pipeline)
    if context is None:
        context = pb.Context(type_id=context_type, name=pipeline)
    execution_id, _, _ = store.put_execution(execution, pairs, [context])
    return execution_id


def _records(store, executions) -> list[MonitoringRecord]:
    from ml_metadata.proto import metadata_store_pb2 as pb

    if not executions:
        return []
    events = store.get_events_by_execution_ids([e.id for e in executions])
    stats_ids = {
        ev.execution_id: ev.artifact_id
        for ev in events
        if ev.type == pb.Event.OUTPUT and ev.path.steps[0].key == "serving_statistics"
    }
    uris = {a.id: a.uri for a in store.get_artifacts_by_id(sorted(set(stats_ids.values())))}
    found = []
    for ex in executions:
        props = ex.custom_properties
        if ex.last_known_state != pb.Execution.COMPLETE:
            continue
        found.append(
            MonitoringRecord(
                execution_id=ex.id,
                pipeline=props["pipeline"].string_value,
                model_name=props["model_name"].string_value,
                version=props["model_version"].int_value,
                first_secs=props["first_request_secs"].int_value,
                last_secs=props["last_request_secs"].int_value,
                requests=props["requests"].int_value,
                verdict=props["verdict"].string_value,
                crossed=[c for c in props["crossed"].string_value.split(",") if c],
                statistics_uri=uris.get(stats_ids.get(ex.id)),
                result=json.loads(props["result"].string_value or "{}"),
                create_ms=ex.create_time_since_epoch,
            )
        )
    return found


def monitoring_records(store, pipeline: str | None = None) -> list[MonitoringRecord]:
    """Every monitoring execution (of one pipeline, or all), oldest first."""
    try:
        executions = store.get_executions_by_type(EXECUTION_TYPE)
    except Exception:  # noqa: BLE001 - type not registered yet: nothing monitored
        return []
    records = _records(store, executions)
    return [r for r in records if pipeline is None or r.pipeline == pipeline]


def previous_window(
    store, pipeline: str, model_name: str, before_secs: int
) -> MonitoringRecord | None:
    """The latest earlier window of the same served model: the control for drift."""
    earlier = [
        r
        for r in monitoring_records(store, pipeline)
        if r.model_name == model_name and r.last_secs < before_secs and r.statistics_uri
    ]
    return max(earlier, key=lambda r: (r.last_secs, r.execution_id), default=None)


def monitored_by(store, artifact_ids: list[int]) -> list[MonitoringRecord]:
    """Monitoring executions that took any of the artifacts (a model, a pushed model) as input."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    if not artifact_ids:
        return []
    events = store.get_events_by_artifact_ids(artifact_ids)
    ids = sorted({ev.execution_id for ev in events if ev.type == pb.Event.INPUT})
    if not ids:
        return []
    executions = [
        e
        for e in store.get_executions_by_id(ids)
        if e.type == EXECUTION_TYPE or _type_name(store, e.type_id) == EXECUTION_TYPE
    ]
    return _records(store, executions)


def _type_name(store, type_id: int) -> str:
    [execution_type] = store.get_execution_types_by_id([type_id])
    return execution_type.name
