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
    """Trace REF: a pushed version, a label (`stable`, `canary`: the version holding it now), a
    model or pushed-model path, an artifact id (`#12`), or a source data file (then: every model
    and pushed version built from it).

    Example:

    \b
        beamline lineage stable
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
    target = trace.find_target(graph, labelled_version(store, ref, pipeline))
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


def labelled_version(store, ref: str, pipeline: str | None) -> str:
    """`version:V` when REF is a label held now (as `promote`, `rollback` and `monitor --compare`
    read labels: their holders in the label history), by --pipeline's version or else by the one
    pipeline that has it; REF unchanged when it is no label (or an existing path)."""
    import os

    from beamline.errors import ConfigError
    from beamline.metadata import labels

    if ref.isdigit() or ref.startswith(("#", "artifact:", "version:")) or os.path.exists(ref):
        return ref
    pipelines = [pipeline] if pipeline else labels.pipelines_with_labels(store)
    held = {}
    for name in pipelines:
        version = labels.holders(labels.history(store, name)).get(ref)
        if version is not None:
            held[name] = version
    if len(held) > 1:
        holders = ", ".join(f"{name} (version {version})" for name, version in held.items())
        raise ConfigError(
            f"Label {ref!r} is held in {len(held)} pipelines: {holders}. Say whose with "
            f"--pipeline NAME, or give the version number."
        )
    return f"version:{held.popitem()[1]}" if held else ref
