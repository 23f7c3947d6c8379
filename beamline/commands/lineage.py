"""`beamline lineage`: a model's path back to its source files, or a data file's forward."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, store_options


@click.command(cls=Command)
@click.argument("ref")
@store_options
@click.option(
    "--no-payloads",
    is_flag=True,
    help="Do not read metrics/anomalies/hyperparameters from the artifacts' files.",
)
@json_option
def lineage(ref, root, metadata, pipeline, no_payloads, as_json) -> None:
    """Trace REF: a pushed version, a model or pushed-model path, an artifact id (`#12`), or a
    source data file (then: every model and pushed version built from it).

    Example:

    \b
        beamline lineage 1795681571
    """
    import json

    from beamline.lineage import trace
    from beamline.lineage.access import open_graph_and_store
    from beamline.lineage.format import lineage_text
    from beamline.loop.lineage import triggered_by_json, triggered_by_text
    from beamline.models.view import label_periods, label_periods_text
    from beamline.monitor.lineage import monitored_by_json, monitored_by_text

    graph, store = open_graph_and_store(root, metadata, pipeline)
    target = trace.find_target(graph, ref)
    if target.data_path is not None:
        sources, result = trace.from_data_file(graph, target.data_path)
        result.sources = sources
    else:
        result = trace.upstream(graph, target.artifacts[0].id, payload=not no_payloads)
    watched = [a.id for a in target.artifacts] + list(result.models)
    held = label_periods(graph, store, target.artifacts)
    if as_json:
        data = {
            **result.to_json(),
            "monitored_by": monitored_by_json(store, watched),
            "triggered_by": triggered_by_json(store, graph, watched),
            "labels": held,
        }
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(
            lineage_text(result)
            + triggered_by_text(store, graph, watched)
            + monitored_by_text(store, watched)
            + label_periods_text(held)
        )
