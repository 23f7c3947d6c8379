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
    from beamline.errors import ConfigError
    from beamline.lineage.load import load_graph
    from beamline.metadata.connection import describe, open_existing
    from beamline.settings import RootLayout

    layout = RootLayout(Path(root))
    store = open_existing(metadata, layout.metadata_path)
    graph = load_graph(store, pipeline, source=describe(metadata, layout.metadata_path))
    if pipeline and not graph.runs:
        everything = load_graph(store, None)
        known = ", ".join(everything.pipelines()) or "none"
        raise ConfigError(
            f"No runs of pipeline {pipeline!r} in {graph.source}. Pipelines with runs: {known}."
        )
    return graph, store
