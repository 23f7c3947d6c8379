"""Opening the store for the read-only lineage commands."""

from __future__ import annotations

from pathlib import Path

from beamline.lineage.model import Graph


def open_graph(root: Path, metadata: str | None, pipeline: str | None = None) -> Graph:
    """Loads the store's runs (of `pipeline`, or all) into a Graph; errors are BeamlineErrors."""
    return open_graph_and_store(root, metadata, pipeline)[0]


def open_graph_and_store(root: Path, metadata: str | None, pipeline: str | None = None):
    """(Graph, MetadataStore): the store for the few queries a Graph does not hold.

    `root` is the resolved run root (the CLI's --root option resolves it once).
    """
    from beamline.metadata.workspace import Workspace

    workspace = Workspace(root, metadata)
    return graph_of(workspace, pipeline), workspace.store


def graph_of(workspace, pipeline: str | None = None) -> Graph:
    """The runs (of `pipeline`, or all) in a Workspace's store, loaded into a Graph; a pipeline
    with no runs there is a ConfigError naming the closest name."""
    from beamline.lineage.load import load_graph

    store = workspace.store
    graph = load_graph(store, pipeline, source=workspace.source)
    if pipeline and not graph.runs:
        raise unknown_pipeline(pipeline, load_graph(store, None).pipelines(), graph.source)
    return graph


def unknown_pipeline(pipeline: str, known: list[str], source: str):
    """The error (exit 2) for a pipeline with no runs in the store, naming the closest name."""
    from beamline.errors import ConfigError, did_you_mean

    return ConfigError(
        f"No runs of pipeline {pipeline!r} in {source}. {did_you_mean(pipeline, known)}"
        f"Pipelines with runs: {', '.join(known) or 'none'}."
    )


def require_pipeline(store, pipeline: str, source: str) -> None:
    """ConfigError (exit 2) unless `pipeline` has a run in `store` (a cheap check: no Graph)."""
    from beamline.lineage.orchestrators import KFP_PIPELINE
    from beamline.metadata import run_context as rc

    kinds = (rc.PIPELINE_CONTEXT, KFP_PIPELINE)  # Beamline's and Airflow's; Kubeflow's
    known = sorted({c.name for kind in kinds for c in store.get_contexts_by_type(kind)})
    if pipeline not in known:
        raise unknown_pipeline(pipeline, known, source)
