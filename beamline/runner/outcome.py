"""What a finished run produced, read back from MLMD: blessing, pushed version, anomalies."""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_metadata.proto import metadata_store_pb2

from beamline.metadata import run_context as rc


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
    # Where the Pusher delivers and an example request: for the summary's "serve it" lines.
    serving_dir: str | None = None
    sample_instance: dict | None = None
    # The label changes this run's push made ("canary -> 1764633300"; beamline.runner.push).
    labels: list[str] = field(default_factory=list)
    # Rows the ExampleGen left out for a missing label (None: it does not leave rows out).
    rows_without_label: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.anomalies is None


def node_outputs(store, pipeline_name: str, run_id: str, node_id: str) -> dict[str, list]:
    """Output artifacts (by output key) of `node_id`'s execution in run `run_id`."""
    run_ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    node_ctx = store.get_context_by_type_and_name(rc.NODE_CONTEXT, f"{pipeline_name}.{node_id}")
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


def fill_from_mlmd(outcome: RunOutcome, store) -> RunOutcome:
    """Sets blessing and push details from the Evaluator's and Pusher's outputs, and the rows
    the ExampleGen left out."""
    for node in (n for n in outcome.node_states if n.endswith("ExampleGen")):
        for examples in node_outputs(store, outcome.pipeline_name, outcome.run_id, node).get(
            "examples", []
        ):
            value = rc.properties_of(examples).get(rc.ROWS_WITHOUT_LABEL_PROPERTY)
            if isinstance(value, int):
                outcome.rows_without_label = (outcome.rows_without_label or 0) + value
    blessing = node_outputs(store, outcome.pipeline_name, outcome.run_id, "Evaluator").get(
        "blessing", []
    )
    if blessing:
        outcome.blessed = rc.blessed_from(rc.properties_of(blessing[0]))
    pushed = node_outputs(store, outcome.pipeline_name, outcome.run_id, "Pusher").get(
        "pushed_model", []
    )
    push = rc.push_from(rc.properties_of(pushed[0])) if pushed else None
    if push is not None:
        from beamline.metadata.labels import history
        from beamline.metadata.records import LabelAction

        outcome.pushed = True
        outcome.pushed_version, outcome.pushed_path = push
        outcome.labels = [
            f"{c.label} -> {c.to_version}" for c in history(store, outcome.pipeline_name)
            if c.pushed_model_id == pushed[0].id and c.action == LabelAction.PUSH
        ]
    return outcome
