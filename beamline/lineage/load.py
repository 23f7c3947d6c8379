"""Reads an ML Metadata store into a `beamline.lineage.model.Graph` (the only MLMD-facing code).

Follows TFX's conventions: a `pipeline` context per pipeline whose children are `pipeline_run`
contexts (one per run id), a `node` context per node named `<pipeline>.<node id>`, and INPUT /
OUTPUT events keyed by the component's input/output names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from beamline.lineage import orchestrators
from beamline.lineage.model import Artifact, Execution, Graph, Run
from beamline.metadata import run_context

PIPELINE = run_context.PIPELINE_CONTEXT
PIPELINE_RUN = run_context.RUN_CONTEXT
NODE = run_context.NODE_CONTEXT
_CHUNK = 400
_props = run_context.properties_of


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _run_contexts(store, pctx) -> list:
    return [
        c
        for c in store.get_children_contexts_by_context(pctx.id)
        if c.type == PIPELINE_RUN or not c.type
    ]


def run_stamps(store, pipeline: str) -> list[tuple[str, str, bool]]:
    """(run id, stamp, ended) of every run of `pipeline`, in Graph.sorted_runs order, from the
    run contexts alone (no execution, event or artifact read): the stamp (context id, creation
    and last-update times) changes when the run's context does; `ended`: its context records an
    ended state. Runs other orchestrators recorded have an empty stamp and never ended here."""
    pctx = store.get_context_by_type_and_name(PIPELINE, pipeline)
    found = []
    for rctx in _run_contexts(store, pctx) if pctx is not None else []:
        state = _props(rctx).get(run_context.STATE)
        stamp = f"{rctx.id}:{rctx.create_time_since_epoch}:{rctx.last_update_time_since_epoch}"
        ended = bool(state) and state != run_context.RunState.RUNNING
        found.append((rctx.create_time_since_epoch, rctx.name, stamp, ended))
    for foreign in orchestrators.foreign_runs(store, pipeline):
        found.append((foreign.run.create_ms, foreign.run.id, "", False))
    return [(run_id, stamp, ended) for _, run_id, stamp, ended in sorted(found)]


def load_graph(store, pipeline: str | None = None, source: str = "") -> Graph:
    """All runs of `pipeline` (or of every pipeline) with their executions and artifacts."""
    graph = Graph(source=source)
    pipeline_ctxs = [
        c for c in store.get_contexts_by_type(PIPELINE) if pipeline is None or c.name == pipeline
    ]
    raw_execs: dict[int, Any] = {}
    exec_pipeline: dict[int, str] = {}
    exec_run: dict[int, str] = {}
    for pctx in pipeline_ctxs:
        for ex in store.get_executions_by_context(pctx.id):
            raw_execs[ex.id] = ex
            exec_pipeline[ex.id] = pctx.name
        for rctx in _run_contexts(store, pctx):
            run = Run(
                id=rctx.name,
                pipeline=pctx.name,
                create_ms=rctx.create_time_since_epoch,
                properties=_props(rctx),
            )
            for ex in store.get_executions_by_context(rctx.id):
                if ex.id in raw_execs:
                    run.execution_ids.append(ex.id)
                    exec_run[ex.id] = rctx.name
            graph.runs[run.id] = run
    # Runs made by Airflow's TFX runner or by Kubeflow v2 / Vertex (other context layouts).
    foreign = orchestrators.foreign_runs(store, pipeline)
    orchestrators.merge(graph, foreign, raw_execs, exec_pipeline, exec_run)
    if not raw_execs:
        return graph

    # Node ids: the node context named "<pipeline>.<node id>".
    exec_node: dict[int, str] = {}
    prefixes = {p.name + "." for p in pipeline_ctxs}
    for nctx in store.get_contexts_by_type(NODE):
        prefix = next((p for p in prefixes if nctx.name.startswith(p)), None)
        if prefix is None:
            continue
        for ex in store.get_executions_by_context(nctx.id):
            if ex.id in raw_execs and exec_pipeline[ex.id] + "." == prefix:
                exec_node[ex.id] = nctx.name[len(prefix) :]
    _fill(store, graph, raw_execs, exec_pipeline, exec_run, exec_node)
    orchestrators.label(graph, foreign)
    return graph


def _fill(store, graph: Graph, raw_execs: dict[int, Any], exec_pipeline: dict[int, str],
          exec_run: dict[int, str], exec_node: dict[int, str]) -> None:
    """Adds the executions `raw_execs` to `graph`, with their events and artifacts."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    exec_types = {t.id: t.name for t in store.get_execution_types()}
    art_types = {t.id: t.name for t in store.get_artifact_types()}
    state_name = pb.Execution.State.Name
    art_state_name = pb.Artifact.State.Name
    exec_ids = sorted(raw_execs)
    for eid in exec_ids:
        ex = raw_execs[eid]
        type_name = exec_types.get(ex.type_id, ex.type or "?")
        graph.executions[eid] = Execution(
            id=eid,
            type=type_name,
            node_id=exec_node.get(eid, type_name.rsplit(".", 1)[-1]),
            pipeline=exec_pipeline[eid],
            run_id=exec_run.get(eid, ""),
            state=state_name(ex.last_known_state),
            start_ms=ex.create_time_since_epoch,
            end_ms=ex.last_update_time_since_epoch,
            properties=_props(ex),
        )

    artifact_ids: set[int] = set()
    for chunk in _chunks(exec_ids):
        for event in store.get_events_by_execution_ids(chunk):
            ex = graph.executions[event.execution_id]
            steps = [s.key for s in event.path.steps if s.HasField("key")]
            key = steps[0] if steps else ""
            if event.type in (pb.Event.INPUT, pb.Event.DECLARED_INPUT, pb.Event.INTERNAL_INPUT):
                target = ex.inputs
            elif event.type in (
                pb.Event.OUTPUT,
                pb.Event.DECLARED_OUTPUT,
                pb.Event.INTERNAL_OUTPUT,
                pb.Event.PENDING_OUTPUT,
            ):
                target = ex.outputs
            else:
                continue
            ids = target.setdefault(key, [])
            if event.artifact_id not in ids:
                ids.append(event.artifact_id)
            artifact_ids.add(event.artifact_id)

    for chunk in _chunks(sorted(artifact_ids)):
        for art in store.get_artifacts_by_id(chunk):
            graph.artifacts[art.id] = Artifact(
                id=art.id,
                type=art_types.get(art.type_id, art.type or "?"),
                uri=art.uri,
                state=art_state_name(art.state),
                properties=_props(art),
                create_ms=art.create_time_since_epoch,
            )


def load_runs(store, pipeline: str, run_ids: Iterable[str], source: str = "") -> Graph | None:
    """The runs `run_ids` of `pipeline` (of Beamline's and TFX's context layout), each with its
    executions and artifacts, and around them what a row of the experiments table looks at
    beyond its run: every execution of the pipeline that read or wrote one of their artifacts
    or an artifact at the URI of one of their inputs (a cached execution's original, the Tuner
    behind imported hyperparameters). A few queries per run, not the whole pipeline's Graph.
    None when the pipeline has no such context (then load_graph)."""
    pctx = store.get_context_by_type_and_name(PIPELINE, pipeline)
    if pctx is None:
        return None
    graph = Graph(source=source)
    wanted = set(run_ids)
    raw_execs: dict[int, Any] = {}
    exec_run: dict[int, str] = {}
    exec_node: dict[int, str] = {}
    run_ctxs = _run_contexts(store, pctx)
    # An execution in several runs belongs, as in load_graph, to the last of them.
    order = {c.id: n for n, c in enumerate(run_ctxs)}

    def place(execution_ids: Iterable[int]) -> list[int]:
        """Keeps the executions recorded in the pipeline's context; their runs and nodes."""
        kept = []
        for eid in execution_ids:
            contexts = store.get_contexts_by_execution(eid)
            if all(c.id != pctx.id for c in contexts):
                continue
            runs = [c for c in contexts if c.id in order]
            if runs:
                exec_run[eid] = max(runs, key=lambda c: order[c.id]).name
            for c in contexts:
                if c.type == NODE and c.name.startswith(pipeline + "."):
                    exec_node[eid] = c.name[len(pipeline) + 1 :]
            kept.append(eid)
        return kept

    for rctx in run_ctxs:
        if rctx.name not in wanted:
            continue
        run = Run(id=rctx.name, pipeline=pipeline, create_ms=rctx.create_time_since_epoch,
                  properties=_props(rctx))
        found = {ex.id: ex for ex in store.get_executions_by_context(rctx.id)}
        for eid in place(found):
            raw_execs[eid] = found[eid]
            run.execution_ids.append(eid)
        graph.runs[run.id] = run
    own = sorted(raw_execs)
    if own:
        from ml_metadata.proto import metadata_store_pb2 as pb

        events = store.get_events_by_execution_ids(own)
        artifact_ids = {e.artifact_id for e in events}
        inputs = {e.artifact_id for e in events if e.type == pb.Event.INPUT}
        uris = {a.uri for a in store.get_artifacts_by_id(sorted(inputs)) if a.uri}
        for uri in sorted(uris):
            artifact_ids.update(a.id for a in store.get_artifacts_by_uri(uri))
        around = {e.execution_id for e in store.get_events_by_artifact_ids(sorted(artifact_ids))}
        around = sorted(around - set(raw_execs))
        found = {ex.id: ex for ex in store.get_executions_by_id(around)} if around else {}
        for eid in place(found):
            raw_execs[eid] = found[eid]
    _fill(store, graph, raw_execs, dict.fromkeys(raw_execs, pipeline), exec_run, exec_node)
    return graph


def cache_keys(store, execution_ids: Iterable[int]) -> dict[int, str]:
    """execution id -> name of its `execution_cache` context (TFX's cache key), where it has one."""
    keys: dict[int, str] = {}
    for eid in execution_ids:
        for ctx in store.get_contexts_by_execution(eid):
            if ctx.type == "execution_cache" or "cache" in ctx.type:
                keys[eid] = ctx.name
    return keys
