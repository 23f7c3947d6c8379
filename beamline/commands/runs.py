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

    _cancel_flink_orphans(root, metadata)
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


def _cancel_flink_orphans(root, metadata) -> None:
    """Flink jobs of runs that died with everything else (kill -9) still hold slots: cancel
    them by the ids the runs recorded (beamline.flink.orphans; nothing to do without any)."""
    from beamline.flink import orphans
    from beamline.metadata.connection import connection_config, open_store
    from beamline.settings import RootLayout

    layout = RootLayout(root)
    if metadata is None and not layout.metadata_path.exists():
        return
    try:
        store = open_store(connection_config(metadata, layout.metadata_path))
    except Exception:  # noqa: BLE001 - open_graph below reports an unusable store
        return
    canceled = orphans.cancel_orphans(store)
    if canceled:
        click.echo(f"beamline: {orphans.describe(canceled)}", err=True)
