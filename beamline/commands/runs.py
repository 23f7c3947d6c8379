"""`beamline runs`: every run in the metadata store, newest first."""

from __future__ import annotations

import click

from beamline.commands.options import json_option, store_options


@click.command()
@store_options
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="Show at most this many runs (0: all).",
)
@json_option
def runs(root, metadata, pipeline, limit, as_json) -> None:
    """List runs: start time, state, duration, executed/cached nodes, blessing, pushed version."""
    import json

    from beamline.lineage.access import open_graph
    from beamline.lineage.format import runs_table
    from beamline.lineage.runs import run_summaries

    graph = open_graph(root, metadata, pipeline)
    summaries = list(reversed(run_summaries(graph, pipeline)))
    if limit:
        summaries = summaries[:limit]
    if as_json:
        click.echo(json.dumps([s.to_json() for s in summaries], indent=2))
    else:
        click.echo(runs_table(summaries))
