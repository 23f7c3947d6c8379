"""Opening the store for the read-only lineage commands (shared CLI options live here too)."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.lineage.model import Graph


def store_options(func):
    """--root, --metadata and --pipeline, as every lineage command takes them."""
    func = click.option(
        "--pipeline", "-p", default=None, help="Only this pipeline's runs (default: all)."
    )(func)
    func = click.option(
        "--metadata",
        default=None,
        help="MLMD store: sqlite:///PATH, mysql://USER@HOST:PORT/DB (password from "
        "$BEAMLINE_MYSQL_PASSWORD or $BEAMLINE_MYSQL_PASSWORD_FILE) or a config file "
        "[default: SQLite under the run root].",
    )(func)
    func = click.option(
        "--root",
        type=click.Path(path_type=Path),
        default=None,
        help="Run root whose metadata.sqlite to read [default: $BEAMLINE_ROOT or ./beamline_runs].",
    )(func)
    return func


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(
        func
    )


def open_graph(root: Path | None, metadata: str | None, pipeline: str | None = None) -> Graph:
    """Loads the store's runs (of `pipeline`, or all) into a Graph; errors are BeamlineErrors."""
    return open_graph_and_store(root, metadata, pipeline)[0]


def open_graph_and_store(root: Path | None, metadata: str | None, pipeline: str | None = None):
    """(Graph, MetadataStore): the store for the few queries a Graph does not hold."""
    from beamline.errors import ConfigError
    from beamline.lineage.load import load_graph
    from beamline.metadata.connection import describe, open_existing
    from beamline.settings import RootLayout, default_root

    layout = RootLayout(Path(root) if root else default_root())
    store = open_existing(metadata, layout.metadata_path)
    graph = load_graph(store, pipeline, source=describe(metadata, layout.metadata_path))
    if pipeline and not graph.runs:
        everything = load_graph(store, None)
        known = ", ".join(everything.pipelines()) or "none"
        raise ConfigError(
            f"No runs of pipeline {pipeline!r} in {graph.source}. Pipelines with runs: {known}."
        )
    return graph, store
