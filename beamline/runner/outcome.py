"""What a finished run produced, read back from MLMD: blessing, pushed version, anomalies."""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_metadata.proto import metadata_store_pb2


@dataclass
class RunOutcome:
    pipeline_name: str
    run_id: str
    node_states: dict[str, str] = field(default_factory=dict)
    blessed: bool | None = None
    pushed: bool = False
    pushed_version: str | None = None
    pushed_path: str | None = None
    anomalies: str | None = None
    error: str | None = None
    failed_node: str | None = None
    log_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.anomalies is None


def node_outputs(store, pipeline_name: str, run_id: str, node_id: str) -> dict[str, list]:
    """Output artifacts (by output key) of `node_id`'s execution in run `run_id`."""
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    node_ctx = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if run_ctx is None or node_ctx is None:
        return {}
    in_run = {e.id for e in store.get_executions_by_context(run_ctx.id)}
    executions = [e for e in store.get_executions_by_context(node_ctx.id) if e.id in in_run]
    if not executions:
        return {}
    latest = max(executions, key=lambda e: e.id)
    events = store.get_events_by_execution_ids([latest.id])
    outputs = [
        e for e in events
        if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in outputs])}
    by_key: dict[str, list] = {}
    for e in outputs:
        key = e.path.steps[0].key if e.path.steps else ""
        if e.artifact_id in artifacts:
            by_key.setdefault(key, []).append(artifacts[e.artifact_id])
    return by_key


def _int_prop(artifact, name: str) -> int | None:
    if name in artifact.custom_properties:
        return artifact.custom_properties[name].int_value
    return None


def _str_prop(artifact, name: str) -> str | None:
    if name in artifact.custom_properties:
        return artifact.custom_properties[name].string_value
    return None


def fill_from_mlmd(outcome: RunOutcome, store) -> RunOutcome:
    """Sets blessing and push details from the Evaluator's and Pusher's outputs."""
    blessing = node_outputs(store, outcome.pipeline_name, outcome.run_id, "Evaluator").get(
        "blessing", []
    )
    if blessing:
        outcome.blessed = _int_prop(blessing[0], "blessed") == 1
    pushed = node_outputs(store, outcome.pipeline_name, outcome.run_id, "Pusher").get(
        "pushed_model", []
    )
    if pushed and _int_prop(pushed[0], "pushed") == 1:
        outcome.pushed = True
        outcome.pushed_version = _str_prop(pushed[0], "pushed_version") or str(
            _int_prop(pushed[0], "pushed_version")
        )
        outcome.pushed_path = _str_prop(pushed[0], "pushed_destination")
    return outcome
