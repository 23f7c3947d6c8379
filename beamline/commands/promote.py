"""`beamline promote` and `beamline rollback`: move a version label, recorded in MLMD."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.models import rest_port_option
from beamline.commands.options import metadata_option, root_option


def _open(workspace, pipeline):
    """(Graph, store) of the command's Workspace."""
    from beamline.lineage.access import graph_of

    return graph_of(workspace, pipeline), workspace.store


def _say(outcome) -> None:
    click.echo(outcome.message)
    if outcome.change is not None:
        click.echo(f"recorded as LabelChange #{outcome.change.execution_id} "
                   f"({outcome.change.action} by {outcome.change.user}@{outcome.change.host})")
    click.echo(f"wrote {outcome.config_path}")


@click.command(cls=Command)
@click.argument("pipeline")
@click.argument("version", type=int)
@click.option("--label", required=True, help="The label to move (stable, canary, ...).")
@click.option("--reason", default="", help="Why: kept with the record.")
@click.option(
    "--canary-percent", type=float, default=None,
    help="With --label canary: the share (0 to 100) of unversioned requests `beamline serve` "
    "sends to the canary (routing.json).",
)
@root_option()
@metadata_option
@rest_port_option
def promote(pipeline, version, label, reason, canary_percent, root, metadata, rest_port) -> None:
    """Give VERSION of PIPELINE the label (stable, canary, ...): refused (exit 10) for a version
    not on disk, not recorded as pushed, or not blessed.

    Example:

    \b
        beamline promote penguin 1764633600 --label stable --reason "canary healthy"
    """
    from beamline.errors import ConfigError
    from beamline.metadata import labels_file
    from beamline.metadata import records as r
    from beamline.metadata.workspace import Workspace
    from beamline.models.changes import promote as do_promote
    from beamline.settings import rest_port as port_of

    if canary_percent is not None and label != r.CANARY_LABEL:
        raise ConfigError(
            f"--canary-percent sets the share of the canary label; it cannot go with --label "
            f"{label}. Use --label {r.CANARY_LABEL}."
        )
    workspace = Workspace(root, metadata)
    layout = workspace.layout
    if canary_percent is not None:
        # Checked as the server will read it, before any label moves or file is written.
        labels_file.check_canary_percent(canary_percent, "--canary-percent")
        labels_file.routing_text_with(layout, pipeline, canary_percent)
    graph, store = _open(workspace, pipeline)
    outcome = do_promote(store, graph, layout, pipeline, version, label, reason,
                         port_of(rest_port))
    _say(outcome)
    if canary_percent is not None:
        with labels_file.labels_lock(layout):
            path = labels_file.set_canary_percent(layout, pipeline, canary_percent)
        click.echo(f"canary share {canary_percent:g}% written to {path}")


@click.command(cls=Command)
@click.argument("pipeline")
@click.option("--label", required=True, help="The label to move back.")
@click.option("--reason", default="", help="Why: kept with the record.")
@root_option()
@metadata_option
@rest_port_option
def rollback(pipeline, label, reason, root, metadata, rest_port) -> None:
    """Move the label of PIPELINE back to the version that held it before (from the recorded
    history); exit 10 when no earlier version held it.

    Example:

    \b
        beamline rollback penguin --label stable --reason "accuracy fell"
    """
    from beamline.metadata.workspace import Workspace
    from beamline.models.changes import rollback as do_rollback
    from beamline.settings import rest_port as port_of

    workspace = Workspace(root, metadata)
    graph, store = _open(workspace, pipeline)
    _say(do_rollback(store, graph, workspace.layout, pipeline, label, reason,
                     port_of(rest_port)))
