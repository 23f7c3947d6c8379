"""The label history of a pipeline's model versions, as `beamline.LabelChange` records in MLMD.

One execution per change of one label (records.py names the type, context and properties). The
history is the source of truth: which version holds a label now or held it at any past time,
and where a rollback goes, are replays of it; the serving labels file is derived from it
(beamline.metadata.labels_file).
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from beamline.metadata import records as r
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import now_ms


@dataclass(frozen=True)
class LabelChange:
    """One recorded change of one label."""

    execution_id: int
    pipeline: str
    label: str
    from_version: int  # records.NO_VERSION when the label held none
    to_version: int
    action: str  # records.LabelAction
    reason: str
    user: str
    host: str
    time_ms: int
    pushed_model_id: int | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["from_version"] = None if self.from_version == r.NO_VERSION else self.from_version
        return data


def _type_id(store, kind: str, name: str) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    if kind == "context":
        return store.put_context_type(
            pb.ContextType(name=name), can_add_fields=True, can_omit_fields=True
        )
    return store.put_execution_type(
        pb.ExecutionType(name=name), can_add_fields=True, can_omit_fields=True
    )


def _models_context(store, pipeline: str, create: bool):
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.proto import metadata_store_pb2 as pb

    try:
        found = store.get_context_by_type_and_name(r.MODELS_CONTEXT, pipeline)
    except mlmd_errors.NotFoundError:  # the type itself does not exist yet
        found = None
    if found is not None or not create:
        return found
    context = pb.Context(type_id=_type_id(store, "context", r.MODELS_CONTEXT), name=pipeline)
    context.custom_properties[r.LABEL_PIPELINE].string_value = pipeline
    try:
        store.put_contexts([context])
    except mlmd_errors.AlreadyExistsError:  # another writer created it just now
        pass
    return store.get_context_by_type_and_name(r.MODELS_CONTEXT, pipeline)


def _change_of(execution, pipeline: str, pushed_model_id: int | None) -> LabelChange:
    props = rc.properties_of(execution)
    return LabelChange(
        execution_id=execution.id,
        pipeline=str(props.get(r.LABEL_PIPELINE) or pipeline),
        label=str(props.get(r.LABEL_NAME) or ""),
        from_version=int(props.get(r.LABEL_FROM_VERSION, r.NO_VERSION)),
        to_version=int(props.get(r.LABEL_TO_VERSION, r.NO_VERSION)),
        action=str(props.get(r.LABEL_ACTION) or ""),
        reason=str(props.get(r.LABEL_REASON) or ""),
        user=str(props.get(r.LABEL_USER) or ""),
        host=str(props.get(r.LABEL_HOST) or ""),
        time_ms=int(props[r.LABEL_TIME_MS] if props.get(r.LABEL_TIME_MS) is not None
                    else execution.create_time_since_epoch),
        pushed_model_id=pushed_model_id,
    )


def history(store, pipeline: str) -> list[LabelChange]:
    """Every recorded change of `pipeline`'s labels, oldest first (time, then record id)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    context = _models_context(store, pipeline, create=False)
    if context is None:
        return []
    executions = store.get_executions_by_context(context.id)
    inputs: dict[int, int] = {}
    if executions:
        for event in store.get_events_by_execution_ids([e.id for e in executions]):
            if event.type == pb.Event.INPUT:
                inputs[event.execution_id] = event.artifact_id
    changes = [_change_of(e, pipeline, inputs.get(e.id)) for e in executions]
    return sorted(changes, key=lambda c: (c.time_ms, c.execution_id))


def pipelines_with_labels(store) -> list[str]:
    """The pipelines that have a label history in this store."""
    from ml_metadata import errors as mlmd_errors

    try:
        return sorted(c.name for c in store.get_contexts_by_type(r.MODELS_CONTEXT))
    except mlmd_errors.NotFoundError:
        return []


def record_change(
    store,
    pipeline: str,
    label: str,
    to_version: int,
    action: str,
    *,
    from_version: int = r.NO_VERSION,
    reason: str = "",
    pushed_model_id: int | None = None,
    time_ms: int | None = None,
) -> LabelChange:
    """Records one label change (with who, where and when) and returns it as read back."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    context = _models_context(store, pipeline, create=True)
    execution = pb.Execution(
        type_id=_type_id(store, "execution", r.LABEL_CHANGE_EXECUTION),
        last_known_state=pb.Execution.COMPLETE,
    )
    props = execution.custom_properties
    props[r.LABEL_PIPELINE].string_value = pipeline
    props[r.LABEL_NAME].string_value = label
    props[r.LABEL_FROM_VERSION].int_value = int(from_version)
    props[r.LABEL_TO_VERSION].int_value = int(to_version)
    props[r.LABEL_ACTION].string_value = action
    props[r.LABEL_REASON].string_value = reason[:1000]
    props[r.LABEL_USER].string_value = _user()
    props[r.LABEL_HOST].string_value = socket.gethostname()
    # A string: MLMD's MySQL schema stores int_value in 32 bits, too small for epoch ms.
    props[r.LABEL_TIME_MS].string_value = str(now_ms() if time_ms is None else int(time_ms))
    artifact_and_events = []
    if pushed_model_id is not None:
        event = pb.Event(type=pb.Event.INPUT)
        event.path.steps.add().key = r.LABEL_INPUT_KEY
        event.path.steps.add().index = 0
        [artifact] = store.get_artifacts_by_id([pushed_model_id])
        artifact_and_events.append((artifact, event))
    # One call: the execution, its input event and its context association are one transaction.
    execution_id, _, _ = store.put_execution(execution, artifact_and_events, [context])
    [written] = store.get_executions_by_id([execution_id])
    return _change_of(written, pipeline, pushed_model_id)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


# ---------------------------------------------------------------- replays of the history


def holders(changes: Iterable[LabelChange], at_ms: int | None = None) -> dict[str, int]:
    """label -> the version holding it after every change up to `at_ms` (all: now)."""
    held: dict[str, int] = {}
    for change in changes:
        if at_ms is not None and change.time_ms > at_ms:
            break
        held[change.label] = change.to_version
    return held


def holder_stack(changes: Iterable[LabelChange], label: str) -> list[int]:
    """The versions `label` went through, a rollback undoing the change it reverted: the last
    entry holds the label now, the one before it is where a rollback takes it."""
    stack: list[int] = []
    for change in changes:
        if change.label != label:
            continue
        if change.action == r.LabelAction.ROLLBACK and len(stack) >= 2:
            stack.pop()
            stack[-1] = change.to_version
        else:
            stack.append(change.to_version)
    return stack


def labels_by_version(held: dict[str, int]) -> dict[int, list[str]]:
    """version -> the labels it holds (sorted), from a holders() map."""
    out: dict[int, list[str]] = {}
    for label, version in sorted(held.items()):
        out.setdefault(version, []).append(label)
    return out


def version_periods(changes: list[LabelChange], version: int) -> list[dict]:
    """When `version` held each label: [{label, since_ms, until_ms (None: still), how}]."""
    periods: list[dict] = []
    open_: dict[str, dict] = {}
    for change in changes:
        current = open_.get(change.label)
        if current is not None and change.to_version != version:
            current["until_ms"] = change.time_ms
            current["ended_by"] = change.action
            del open_[change.label]
        if change.to_version == version and change.label not in open_:
            period = {"label": change.label, "since_ms": change.time_ms, "until_ms": None,
                      "how": change.action, "reason": change.reason, "ended_by": None}
            periods.append(period)
            open_[change.label] = period
    return periods
