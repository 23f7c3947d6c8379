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
    _check_two_runs(graph, run_a, run_b, pipeline)
    a = resolve_run(graph, run_a, pipeline)
    b = resolve_run(graph, run_b, pipeline)
    result = diff_runs(graph, a, b, drift_threshold=drift_threshold)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        click.echo(diff_text(result))


def _check_two_runs(graph, run_a: str, run_b: str, pipeline: str | None) -> None:
    """With a single run there is nothing to compare: say so, not `previous` is out of range."""
    from beamline.lineage.runs import UnknownRun

    runs = graph.sorted_runs(pipeline)
    if len(runs) != 1:
        return  # none: resolve_run says so; two or more: each name is resolved on its own
    only = runs[0]
    raise UnknownRun(
        f"Nothing to compare: `beamline diff` compares two runs ({run_a} and {run_b}), but "
        f"{graph.source} holds only one run of {only.pipeline!r} ({only.id}). Run the pipeline "
        f"again (`beamline run {only.pipeline}`) and diff the two runs, or name two runs "
        "(`beamline diff RUN_A RUN_B`) of a store that has them (--root / --metadata)."
    )
