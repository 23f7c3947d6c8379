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
    versions = _kept_versions(graph, store, target.artifacts, root, metadata)
    if as_json:
        data = {
            **result.to_json(),
            "monitored_by": monitored_by_json(store, watched),
            "triggered_by": triggered_by_json(store, graph, watched),
            "labels": held,
            "versions": versions,
        }
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(
            lineage_text(result)
            + versions_text(versions)
            + triggered_by_text(store, graph, watched)
            + monitored_by_text(store, watched)
            + label_periods_text(held)
        )


def _kept_versions(graph, store, artifacts, root, metadata) -> dict | None:
    """The data and code versions a pushed model version was trained on, and the checkout
    that restores them (None for any other target). --root and --metadata are in the command
    when they were given on the command line."""
    from beamline.metadata import run_context as rc
    from beamline.settings import RootLayout
    from beamline.versions.log import restore_info
    from beamline.versions.store import ObjectStore

    art = artifacts[0] if len(artifacts) == 1 else None
    push = rc.push_from(art.properties) if art is not None and art.type == rc.PUSHED_MODEL_TYPE \
        else None
    producer = graph.producer(art.id) if push is not None else None
    if producer is None or not push[0].isdigit():
        return None
    source = click.get_current_context().get_parameter_source
    given = click.core.ParameterSource.COMMANDLINE
    return restore_info(
        store, producer.pipeline, int(push[0]), ObjectStore(RootLayout(root).objects_dir),
        root if source("root") == given else None,
        metadata if source("metadata") == given else None,
    )


def versions_text(info: dict | None) -> str:
    """A "Data and code" section: the versions the model was trained on, and the command
    that restores them."""
    if info is None:
        return ""
    if info["run_id"] is None:
        return f"\n\nData and code: none kept: {info['why_none']}."
    lines = ["", "", f"Data and code (kept by run {info['run_id']}):",
             f"  data version  {info['data_version']}"]
    if info["code_version"]:
        lines.append(f"  code version  {info['code_version']}")
    if info.get("remote"):
        from beamline.lineage.format import printable
        from beamline.versions.remote import describe

        lines += [printable(f"  remote input, not kept: {r['uri']} ({describe(r['identity'])})")
                  for r in info["remote"]]
    if info["in_store"] is False:
        lines.append("  not all in the store any more: " + (
            info.get("problem") or "`beamline gc` deleted them, or --root names another root"))
    lines.append(f"  restore them: {info['checkout']}")
    return "\n".join(lines)


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
