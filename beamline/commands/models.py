"""`beamline models PIPELINE`: one row per model version on disk."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, metadata_option, root_option


def rest_port_option(func):
    return click.option(
        "--rest-port", type=int, default=None,
        help="REST port of the local model server to ask [default: $BEAMLINE_REST_PORT or "
        "8501].",
    )(func)


@click.command(cls=Command)
@click.argument("pipeline")
@root_option()
@metadata_option
@rest_port_option
@json_option
def models(pipeline, root, metadata, rest_port, as_json) -> None:
    """Versions of PIPELINE on disk: the run that pushed each (run id, span), its blessing and
    headline metric, the labels it holds, and whether a live server has it AVAILABLE.

    Example:

    \b
        beamline models penguin --json
    """
    import json

    from beamline.lineage.access import graph_of
    from beamline.lineage.format import table
    from beamline.metadata import labels as history
    from beamline.metadata.labels_file import model_states
    from beamline.metadata.workspace import Workspace
    from beamline.metrics import higher_is_better
    from beamline.models.pushed import versions
    from beamline.settings import rest_port as port_of

    workspace = Workspace(root, metadata)
    layout = workspace.layout
    graph, store = graph_of(workspace, pipeline), workspace.store
    held = history.holders(history.history(store, pipeline))
    by_version = history.labels_by_version(held)
    port = port_of(rest_port)
    states = model_states(pipeline, port)
    rows = []
    for found in versions(graph, layout, pipeline):
        headline = found.headline()
        rows.append({
            "version": found.version,
            "path": str(found.path),
            "recorded": found.recorded,
            "run_id": found.run_id,
            "span": found.span,
            "blessed": found.blessed,
            "metric": headline[0] if headline else None,
            "value": headline[1] if headline else None,
            "higher_is_better": higher_is_better(headline[0]) if headline else None,
            "labels": by_version.get(found.version, []),
            "server_state": None if states is None else states.get(found.version, "NOT LOADED"),
        })
    server = (f"no server answers on 127.0.0.1:{port}" if states is None
              else f"server on 127.0.0.1:{port}")
    if as_json:
        click.echo(json.dumps({"pipeline": pipeline, "server": server, "versions": rows,
                               "labels": held}, indent=2))
        return
    if not rows:
        click.echo(f"No versions of {pipeline!r} on disk under {layout.serving_dir(pipeline)}.")
        return
    header = ("VERSION", "RUN", "SPAN", "BLESSED", "METRIC", "LABELS", "SERVER")
    cells = []
    for row in rows:
        blessed = {True: "yes", False: "NO", None: "-"}[row["blessed"]]
        metric = f"{row['metric']}={row['value']:.4f}" if row["metric"] else "-"
        if row["higher_is_better"] is False:
            metric += " (lower is better)"
        cells.append((
            str(row["version"]),
            row["run_id"] or "(not recorded)",
            row["span"] or "-",
            blessed,
            metric,
            ",".join(row["labels"]) or "-",
            row["server_state"] or "-",
        ))
    click.echo(table(header, cells))
    click.echo(f"({server}" + (")" if states is not None else "; SERVER shows '-')"))
