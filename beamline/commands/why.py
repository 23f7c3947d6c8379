"""`beamline why`: why a node executed instead of coming from the cache, or what it reused."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, store_options


@click.command(cls=Command)
@click.argument("component")
@click.option(
    "--run",
    "run_ref",
    default=None,
    help="Run id (or unique prefix), `latest`, `previous` or `latest~N` [default: latest].",
)
@store_options
@json_option
def why(component, run_ref, root, metadata, pipeline, as_json) -> None:
    """Explain why COMPONENT (a node id such as Trainer) ran or came from the cache in a run.

    Example:

    \b
        beamline why Trainer --run latest
    """
    import json

    from beamline.lineage.access import open_graph_and_store
    from beamline.lineage.format import root_cause_text, why_text
    from beamline.lineage.load import cache_keys
    from beamline.lineage.runs import resolve_run
    from beamline.lineage.why import explain, root_causes

    graph, store = open_graph_and_store(root, metadata, pipeline)
    run = resolve_run(graph, run_ref, pipeline)
    explanation = explain(graph, run.id, component)
    if (
        explanation.execution_id is not None
        and explanation.compared_with
        and not (explanation.changes)
    ):
        keys = cache_keys(store, [explanation.execution_id, explanation.compared_with])
        now, before = keys.get(explanation.execution_id), keys.get(explanation.compared_with)
        if now and before:
            explanation.notes.append(
                "TFX's cache key is the same as the earlier execution's, so caching was off "
                "for this run (or its outputs were unavailable)."
                if now == before
                else "TFX's cache key differs although MLMD records no difference: the "
                "executor, Beam arguments or pipeline configuration changed."
            )
    if as_json:
        data = explanation.to_json()
        data["root_causes"] = [
            {"node": node, **change.__dict__} for node, change in root_causes(explanation)
        ]
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"{explanation.node} in run {run.id} ({run.pipeline}):")
    click.echo(why_text(explanation))
    if explanation.upstream:
        click.echo(root_cause_text(root_causes(explanation)))
