"""`beamline diff`: what changed between two runs."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, store_options


@click.command(cls=Command)
@click.argument("run_a", required=False, default="previous")
@click.argument("run_b", required=False, default="latest")
@store_options
@click.option(
    "--drift-threshold",
    type=float,
    default=0.1,
    show_default=True,
    help="Flag features whose drift (L-infinity / Jensen-Shannon) exceeds this, unless "
    "the schema sets a drift comparator.",
)
@json_option
def diff(run_a, run_b, root, metadata, pipeline, drift_threshold, as_json) -> None:
    """Compare RUN_A with RUN_B [default: previous latest]: inputs, parameters, module code,
    statistics drift, anomalies, metrics, blessing and pushed version.

    Example:

    \b
        beamline diff previous latest --pipeline penguin
    """
    import json

    from beamline.lineage.access import open_graph
    from beamline.lineage.diff import diff_runs
    from beamline.lineage.format import diff_text
    from beamline.lineage.runs import resolve_run

    graph = open_graph(root, metadata, pipeline)
    a = resolve_run(graph, run_a, pipeline)
    b = resolve_run(graph, run_b, pipeline)
    result = diff_runs(graph, a, b, drift_threshold=drift_threshold)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        click.echo(diff_text(result))
