"""Runs recorded in ML Metadata by other orchestrators, as the same `Run`s Beamline's runner makes.

`beamline.lineage.load` reads Beamline's (and TFX's IR-based runners') layout: a `pipeline` context
whose children are `pipeline_run` contexts, and `node` contexts. Two other layouts exist:

- TFX's legacy launcher, used by `AirflowDagRunner` (and TFX's other pre-IR runners): a `pipeline`
  context, a `run` context per run named `<pipeline>.<run id>` (properties `pipeline_name`,
  `run_id`) that is *not* a child of it, and a `component_run` context per node; every execution
  carries the properties `pipeline_name`, `run_id` and `component_id` (the node id).
- Kubeflow Pipelines v2 and Vertex AI Pipelines (one schema, KFP's `backend/src/v2/metadata`): a
  `system.Pipeline` context (the pipeline name) parent of `system.PipelineRun` contexts (the run
  id); executions typed `system.ContainerExecution` / `system.ImporterExecution` with the custom
  property `task_name` (the node id) and `system.DAGExecution`s for the DAG itself (not nodes);
  artifact types named by their schema title (`tfx.Model`).

`foreign_runs` finds those runs; `merge` adds them to the loader's tables; `label` fixes node ids,
execution types and artifact type names once executions and artifacts are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beamline.lineage.model import Graph, Run
from beamline.metadata.run_context import value_of

LEGACY_RUN = "run"
LEGACY_PIPELINE_NAME = "pipeline_name"
LEGACY_RUN_ID = "run_id"
LEGACY_COMPONENT_ID = "component_id"
KFP_PIPELINE = "system.Pipeline"
KFP_PIPELINE_RUN = "system.PipelineRun"
KFP_DAG_EXECUTION = "system.DAGExecution"
KFP_TASK_NAME = "task_name"
# Recorded on every mapped run (Run.properties) so readers can say where it came from.
ORCHESTRATOR_PROPERTY = "orchestrator"
AIRFLOW = "airflow (TFX legacy launcher)"
KUBEFLOW = "kubeflow v2 / vertex"


@dataclass
class ForeignRun:
    run: Run
    executions: dict[int, Any] = field(default_factory=dict)  # id -> metadata_store_pb2.Execution
    node_ids: dict[int, str] = field(default_factory=dict)
    # Execution type names to use instead of the recorded one (KFP records no component class).
    types: dict[int, str] = field(default_factory=dict)


def _string(message, name: str) -> str:
    for props in (message.properties, message.custom_properties):
        if name in props and props[name].WhichOneof("value") == "string_value":
            return props[name].string_value
    return ""


def legacy_runs(store, pipeline: str | None) -> list[ForeignRun]:
    """Runs of TFX's legacy launcher (Airflow): `run` contexts and their executions."""
    found = []
    for ctx in store.get_contexts_by_type(LEGACY_RUN):
        name = _string(ctx, LEGACY_PIPELINE_NAME) or ctx.name.split(".", 1)[0]
        if pipeline is not None and name != pipeline:
            continue
        run = Run(
            id=ctx.name,  # `<pipeline>.<Airflow run id>`: unique across pipelines
            pipeline=name,
            create_ms=ctx.create_time_since_epoch,
            properties={
                # What Beamline stamped on it (a loop DAG's trigger, state and reason).
                **{k: value_of(v) for k, v in ctx.custom_properties.items()},
                ORCHESTRATOR_PROPERTY: AIRFLOW,
                "run_id": _string(ctx, LEGACY_RUN_ID),
            },
        )
        foreign = ForeignRun(run)
        for ex in store.get_executions_by_context(ctx.id):
            node = _string(ex, LEGACY_COMPONENT_ID)
            if not node:
                continue  # not a node: the loop's Trigger execution linked to the run
            foreign.executions[ex.id] = ex
            foreign.node_ids[ex.id] = node
        found.append(foreign)
    return found


def kubeflow_runs(store, pipeline: str | None) -> list[ForeignRun]:
    """Runs of Kubeflow Pipelines v2 / Vertex AI: `system.PipelineRun` children of the pipeline."""
    exec_types = None
    found = []
    for pctx in store.get_contexts_by_type(KFP_PIPELINE):
        if pipeline is not None and pctx.name != pipeline:
            continue
        for rctx in store.get_children_contexts_by_context(pctx.id):
            if rctx.type and rctx.type != KFP_PIPELINE_RUN:
                continue
            if exec_types is None:
                exec_types = {t.id: t.name for t in store.get_execution_types()}
            run = Run(
                id=rctx.name,
                pipeline=pctx.name,
                create_ms=rctx.create_time_since_epoch,
                properties={
                    ORCHESTRATOR_PROPERTY: KUBEFLOW,
                    "pipeline_root": _string(rctx, "pipeline_root"),
                },
            )
            foreign = ForeignRun(run)
            for ex in store.get_executions_by_context(rctx.id):
                type_name = exec_types.get(ex.type_id, ex.type)
                task = _string(ex, KFP_TASK_NAME)
                if type_name == KFP_DAG_EXECUTION or not task:
                    continue  # the DAG itself, not a pipeline node
                foreign.executions[ex.id] = ex
                foreign.node_ids[ex.id] = task
                # TFX node ids default to the component class name (Trainer, Pusher, ...).
                foreign.types[ex.id] = f"{type_name}.{task}"
            found.append(foreign)
    return found


def foreign_runs(store, pipeline: str | None = None) -> list[ForeignRun]:
    """Every run of `pipeline` (or all) recorded by Airflow's TFX runner or by KFP v2 / Vertex."""
    return legacy_runs(store, pipeline) + kubeflow_runs(store, pipeline)


def merge(
    graph: Graph,
    foreign: list[ForeignRun],
    raw_execs: dict[int, Any],
    exec_pipeline: dict[int, str],
    exec_run: dict[int, str],
) -> None:
    """Adds the runs to `graph` and their executions to the loader's tables."""
    for found in foreign:
        graph.runs[found.run.id] = found.run
        for eid, ex in sorted(found.executions.items()):
            raw_execs[eid] = ex
            exec_pipeline[eid] = found.run.pipeline
            exec_run[eid] = found.run.id
            if eid not in found.run.execution_ids:
                found.run.execution_ids.append(eid)


def artifact_type(name: str) -> str:
    """KFP v2 names TFX artifact types by schema title (`tfx.Model`); Beamline by type (`Model`)."""
    return name[len("tfx.") :] if name.startswith("tfx.") else name


def label(graph: Graph, foreign: list[ForeignRun]) -> None:
    """Node ids and types of the mapped executions; TFX artifact type names without `tfx.`."""
    for found in foreign:
        for eid, node in found.node_ids.items():
            if eid in graph.executions:
                graph.executions[eid].node_id = node
        for eid, type_name in found.types.items():
            if eid in graph.executions:
                graph.executions[eid].type = type_name
    if foreign:
        for art in graph.artifacts.values():
            art.type = artifact_type(art.type)
