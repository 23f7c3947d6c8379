"""The loop's decisions in ML Metadata: one `beamline.Trigger` execution per step and window.

Names come from beamline.metadata.records. A decision is written *before* the run it starts,
with the run id it will claim, and the execution's name is the pipeline and window bounds
(unique per type in MLMD): a window can never be decided twice, not even by two loops at once.
States: RUNNING while a run it decided is pending or running, then COMPLETE or FAILED with the
outcome; decisions that start no run are COMPLETE at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from beamline.metadata import records as rec
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import now_ms

OUTCOME = rec.TRIGGER_OUTCOME


@dataclass
class TriggerRecord:
    execution_id: int
    pipeline: str
    kind: str
    decision: str
    reason: str
    since_secs: int  # window bounds [since, until), unix seconds (since -1: from the start)
    until_secs: int
    monitor_execution_id: int | None
    run_id: str
    span: int
    state: str  # RUNNING | COMPLETE | FAILED
    outcome: str
    time_ms: int
    canary_review: str = ""  # the canary policy's review in this window ("" when none)

    @property
    def pending(self) -> bool:
        return self.state == rc.ExecutionState.RUNNING


def window_name(pipeline: str, since: int, until: int) -> str:
    return f"{pipeline}@{since}..{until}"


def _types(store) -> tuple[int, int]:
    from ml_metadata.proto import metadata_store_pb2 as pb

    execution_type = store.put_execution_type(pb.ExecutionType(name=rec.TRIGGER_EXECUTION))
    context_type = store.put_context_type(pb.ContextType(name=rec.LOOP_CONTEXT))
    return execution_type, context_type


def record_decision(
    store,
    pipeline: str,
    *,
    kind: str,
    decision: str,
    reason: str,
    since: int,
    until: int,
    monitoring_result_id: int | None,
    monitor_execution_id: int | None,
    run_id: str = "",
    span: int = -1,
    canary_review: str = "",
) -> int:
    """Writes the decision (RUNNING when it starts a run, else COMPLETE) and returns its id.
    Raises ml_metadata's AlreadyExistsError when the window was decided already."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    execution_type, context_type = _types(store)
    state = pb.Execution.RUNNING if run_id else pb.Execution.COMPLETE
    execution = pb.Execution(
        type_id=execution_type, name=window_name(pipeline, since, until), last_known_state=state
    )
    props = execution.custom_properties
    props[rec.TRIGGER_PIPELINE].string_value = pipeline
    props[rec.TRIGGER_KIND].string_value = kind
    props[rec.TRIGGER_DECISION].string_value = decision
    props[rec.TRIGGER_REASON].string_value = reason
    props[rec.TRIGGER_WINDOW_FIRST_SECS].int_value = since
    props[rec.TRIGGER_WINDOW_LAST_SECS].int_value = until
    props[rec.TRIGGER_MONITOR_EXECUTION_ID].int_value = monitor_execution_id or -1
    props[rec.TRIGGER_RUN_ID].string_value = run_id
    props[rec.TRIGGER_SPAN].int_value = span
    # A string: MLMD's MySQL schema stores int_value as 32 bits, too small for epoch ms.
    props[rec.TRIGGER_TIME_MS].string_value = str(now_ms())
    props[OUTCOME].string_value = "run pending" if run_id else ""
    props[rec.TRIGGER_CANARY_REVIEW].string_value = canary_review[:1000]
    pairs = []
    if monitoring_result_id is not None:
        [result] = store.get_artifacts_by_id([monitoring_result_id])
        event = pb.Event(type=pb.Event.INPUT)
        event.path.steps.add().key = rec.TRIGGER_INPUT_KEY
        event.path.steps.add().index = 0
        pairs.append((result, event))
    context = store.get_context_by_type_and_name(rec.LOOP_CONTEXT, pipeline)
    if context is None:
        context = pb.Context(type_id=context_type, name=pipeline)
    execution_id, _, _ = store.put_execution(
        execution, pairs, [context], reuse_context_if_already_exist=True
    )
    return execution_id


def link_run(store, trigger_id: int, run_id: str, context_type: str = rc.RUN_CONTEXT) -> None:
    """Associates the trigger with the run's context (once the run claimed it): a
    `pipeline_run`, or the `run` context of TFX's legacy launcher (Airflow)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    context = store.get_context_by_type_and_name(context_type, run_id)
    if context is None:
        return
    store.put_attributions_and_associations(
        [], [pb.Association(execution_id=trigger_id, context_id=context.id)]
    )


def finish(store, trigger_id: int, outcome: str, failed: bool = False) -> None:
    from ml_metadata.proto import metadata_store_pb2 as pb

    [execution] = store.get_executions_by_id([trigger_id])
    execution.last_known_state = pb.Execution.FAILED if failed else pb.Execution.COMPLETE
    execution.custom_properties[OUTCOME].string_value = outcome[:1000]
    store.put_executions([execution])


def _record(ex) -> TriggerRecord:
    from ml_metadata.proto import metadata_store_pb2 as pb

    props = rc.properties_of(ex)
    monitor = int(props.get(rec.TRIGGER_MONITOR_EXECUTION_ID) or -1)
    return TriggerRecord(
        execution_id=ex.id,
        pipeline=str(props.get(rec.TRIGGER_PIPELINE) or ""),
        kind=str(props.get(rec.TRIGGER_KIND) or ""),
        decision=str(props.get(rec.TRIGGER_DECISION) or ""),
        reason=str(props.get(rec.TRIGGER_REASON) or ""),
        since_secs=int(props.get(rec.TRIGGER_WINDOW_FIRST_SECS) or 0),
        until_secs=int(props.get(rec.TRIGGER_WINDOW_LAST_SECS) or 0),
        monitor_execution_id=monitor if monitor >= 0 else None,
        run_id=str(props.get(rec.TRIGGER_RUN_ID) or ""),
        span=int(props.get(rec.TRIGGER_SPAN) if props.get(rec.TRIGGER_SPAN) is not None else -1),
        state=pb.Execution.State.Name(ex.last_known_state),
        outcome=str(props.get(OUTCOME) or ""),
        time_ms=int(props.get(rec.TRIGGER_TIME_MS) or ex.create_time_since_epoch),
        canary_review=str(props.get(rec.TRIGGER_CANARY_REVIEW) or ""),
    )


def triggers(store, pipeline: str) -> list[TriggerRecord]:
    """The pipeline's decisions, oldest window first."""
    context = store.get_context_by_type_and_name(rec.LOOP_CONTEXT, pipeline)
    if context is None:
        return []
    found = [_record(ex) for ex in store.get_executions_by_context(context.id)]
    return sorted(found, key=lambda t: (t.until_secs, t.execution_id))


def trigger_by_id(store, execution_id: int) -> TriggerRecord | None:
    found = store.get_executions_by_id([execution_id])
    return _record(found[0]) if found else None
