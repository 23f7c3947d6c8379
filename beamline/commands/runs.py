"""`beamline runs`: every run in the metadata store, newest first."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, store_options


@click.command(cls=Command)
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
    """List runs: start time, state, duration, executed/cached nodes, blessing, pushed version.

    Example:

    \b
        beamline runs --pipeline penguin --limit 5
    """
    import json

    from beamline.lineage.access import open_graph
    from beamline.lineage.format import runs_table
    from beamline.lineage.runs import run_summaries, unrecorded_versions
    from beamline.settings import RootLayout

    graph = open_graph(root, metadata, pipeline)
    for version in unrecorded_versions(graph, RootLayout(root).serving_root):
        click.echo(
            f"warning: {version} is a model version no run recorded (a push was killed after "
            "the version became visible, before MLMD recorded it): it has no lineage. Remove "
            "it, or keep it knowingly; `beamline gc --unrecorded-versions` removes such "
            "versions.",
            err=True,
        )
    summaries = list(reversed(run_summaries(graph, pipeline)))
    if limit:
        summaries = summaries[:limit]
    if as_json:
        click.echo(json.dumps([s.to_json() for s in summaries], indent=2))
    else:
        click.echo(runs_table(summaries))

