"""A `beamline run --spec` run recorded in the root's MLMD store as KFP's v2 backend records one.

KFP's driver and launcher (kubeflow/pipelines backend/src/v2/metadata/client.go) write a
`system.Pipeline` context parent of a `system.PipelineRun` context per run, a
`system.DAGExecution` for the DAG, a `system.ContainerExecution` (or `system.ImporterExecution`)
per task with the custom property `task_name`, INPUT and OUTPUT events, and artifacts typed by
their schema title with the executor's metadata as custom properties. `beamline runs`,
`lineage`, `why`, `diff` and `report` read that layout (`beamline.lineage.orchestrators`), so a
spec run shows there like a run on a cluster. Resolver tasks get no execution (their artifacts
are earlier runs'): the task that reads one gets an INPUT event to it when the store has it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from beamline.deploy.spec_resolver import type_title

PIPELINE = "system.Pipeline"
PIPELINE_RUN = "system.PipelineRun"
DAG = "system.DAGExecution"
CONTAINER = "system.ContainerExecution"
IMPORTER = "system.ImporterExecution"


class Recorder:
    """Writes one run as it goes: the run's contexts at the start, each task's execution as
    RUNNING when it starts (as KFP's driver does), then COMPLETE with its outputs or FAILED (as
    the launcher does), so MLMD's times give the tasks' and the run's durations."""

    def __init__(self, store, pipeline: str, run_id: str, pipeline_root: str) -> None:
        from ml_metadata.proto import metadata_store_pb2 as pb

        self.store, self.pb = store, pb
        pipeline_ctx = _context(store, pb, PIPELINE, pipeline, {})
        run_ctx = _context(store, pb, PIPELINE_RUN, run_id, {"pipeline_root": pipeline_root})
        store.put_parent_contexts(
            [pb.ParentContext(child_id=run_ctx.id, parent_id=pipeline_ctx.id)]
        )
        self.contexts = [pipeline_ctx, run_ctx]
        self.dag = self._put(pb.Execution(type_id=_execution_type(store, pb, DAG),
                                          last_known_state=pb.Execution.RUNNING), [])
        self.ids: dict[str, int] = {}  # artifact name -> id, for later tasks' INPUT events

    def start(self, task: str, kind: str, inputs: Mapping[str, Any]):
        """A RUNNING execution of `task` with INPUT events to the artifacts it reads."""
        pb = self.pb
        pairs, seen = [], set()
        for key, value in inputs.items():
            for artifact in value.get("artifacts", []):
                known = self.ids.get(artifact.get("name", "")) or _id_by_uri(
                    self.store, artifact["uri"])
                # One INPUT event per artifact (MLMD's key): a candidate can be its own baseline
                # once the Trainer is cached and the resolver finds its blessed model.
                if known is not None and known not in seen:
                    seen.add(known)
                    pairs.append((None, _event(pb, pb.Event.INPUT, key, known)))
        execution = pb.Execution(
            type_id=_execution_type(self.store, pb, IMPORTER if kind == "importer" else CONTAINER),
            last_known_state=pb.Execution.RUNNING,
        )
        for name in ("task_name", "display_name"):
            execution.custom_properties[name].string_value = task
        return self._put(execution, pairs)

    def finish(
        self, execution, outputs: Mapping[str, Mapping[str, Any]] | None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """COMPLETE with OUTPUT events to `outputs`, or FAILED when `outputs` is None;
        `properties` (the cache fingerprint) as string custom properties."""
        pb = self.pb
        execution.last_known_state = (
            pb.Execution.FAILED if outputs is None else pb.Execution.COMPLETE
        )
        for name, value in (properties or {}).items():
            execution.custom_properties[name].string_value = value
        items = list((outputs or {}).items())
        pairs = [(_artifact(self.store, pb, a), _event(pb, pb.Event.OUTPUT, k)) for k, a in items]
        _, artifact_ids, _ = self.store.put_execution(execution, pairs, self.contexts)
        for (key, artifact), artifact_id in zip(items, artifact_ids, strict=True):
            self.ids[artifact.get("name", key)] = artifact_id

    def reuse(
        self, execution, outputs: Mapping[str, Mapping[str, Any]], earlier: int,
        properties: Mapping[str, str],
    ) -> None:
        """CACHED with OUTPUT events to the artifacts execution `earlier` produced, no new
        artifact: how KFP's driver publishes a cache hit, and how Beamline's lineage finds the
        execution that really produced them."""
        pb = self.pb
        execution.last_known_state = pb.Execution.CACHED
        for name, value in properties.items():
            execution.custom_properties[name].string_value = value
        produced = {
            event.path.steps[0].key: event.artifact_id
            for event in self.store.get_events_by_execution_ids([earlier])
            if event.type == pb.Event.OUTPUT and event.path.steps
        }
        keys = [k for k in outputs if k in produced]
        found = {a.id: a for a in self.store.get_artifacts_by_id([produced[k] for k in keys])}
        pairs = [(found[produced[k]], _event(pb, pb.Event.OUTPUT, k)) for k in keys
                 if produced[k] in found]
        self.store.put_execution(execution, pairs, self.contexts)
        for key in keys:
            self.ids[outputs[key].get("name", key)] = produced[key]

    def close(self, failed: bool) -> None:
        self.finish(self.dag, None if failed else {})

    def _put(self, execution, pairs):
        execution.id, _, _ = self.store.put_execution(execution, pairs, self.contexts)
        return execution


def _context(store, pb, type_name: str, name: str, custom: Mapping[str, str]):
    type_id = store.put_context_type(pb.ContextType(name=type_name))
    found = store.get_context_by_type_and_name(type_name, name)
    if found is not None:
        return found
    context = pb.Context(type_id=type_id, name=name)
    for key, value in custom.items():
        context.custom_properties[key].string_value = value
    [context.id] = store.put_contexts([context])
    return context


def _execution_type(store, pb, name: str) -> int:
    return store.put_execution_type(pb.ExecutionType(name=name))


def _event(pb, kind, key: str, artifact_id: int | None = None):
    event = pb.Event(type=kind)
    event.path.steps.add().key = key
    if artifact_id is not None:
        event.artifact_id = artifact_id
    return event


def _id_by_uri(store, uri: str) -> int | None:
    found = store.get_artifacts_by_uri(uri)
    return found[-1].id if found else None


def _artifact(store, pb, artifact: Mapping[str, Any]):
    title = type_title(artifact.get("type", {})) or "system.Artifact"
    record = pb.Artifact(type_id=store.put_artifact_type(pb.ArtifactType(name=title)),
                         uri=artifact.get("uri", ""), state=pb.Artifact.LIVE)
    for key, value in artifact.get("metadata", {}).items():
        target = record.custom_properties[key]
        if isinstance(value, bool):
            target.int_value = int(value)
        elif isinstance(value, (int, float)):
            target.double_value = float(value)  # a struct number, as KFP's launcher stores it
        elif isinstance(value, str):
            target.string_value = value
        else:
            target.string_value = json.dumps(value)
    return record
