"""`beamline labels PIPELINE [--at TIME]`: which version held each label, now or then."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, metadata_option, root_option
from beamline.timefmt import TIME_HELP, TimeType


@click.command(cls=Command)
@click.argument("pipeline")
@click.option("--at", "at", type=TimeType(), default=None, help=f"A past time: {TIME_HELP}.")
@click.option("--history", "show_history", is_flag=True, help="Also list every recorded change.")
@root_option()
@metadata_option
@json_option
def labels(pipeline, at, show_history, root, metadata, as_json) -> None:
    """Which version of PIPELINE held each label, now or at a past time (--at).

    Example:

    \b
        beamline labels penguin --at "2h ago"
    """
    import json

    from beamline.lineage.access import require_pipeline
    from beamline.lineage.format import printable
    from beamline.metadata import labels as history
    from beamline.metadata.connection import describe, open_existing
    from beamline.settings import RootLayout
    from beamline.timefmt import format_ms, to_ms

    at_ms = to_ms(at) if at is not None else None
    default = RootLayout(root).metadata_path
    store = open_existing(metadata, default)
    changes = history.history(store, pipeline)
    if not changes:  # a name no run used is a mistake (exit 2), not "no labels yet"
        require_pipeline(store, pipeline, describe(metadata, default))
    held = history.holders(changes, at_ms)
    since = {}
    for change in changes:
        if at_ms is not None and change.time_ms > at_ms:
            break
        since[change.label] = change
    if as_json:
        click.echo(json.dumps({
            "pipeline": pipeline,
            "at_ms": at_ms,
            "labels": held,
            "since": {k: v.to_json() for k, v in since.items()},
            "history": [c.to_json() for c in changes] if show_history else None,
        }, indent=2))
        return
    when = f" at {format_ms(at_ms)}" if at_ms is not None else ""
    if not held:
        click.echo(f"No labels of {pipeline!r}{when}" + (
            "" if changes else " (no label was ever recorded)") + ".")
    else:
        click.echo(f"Labels of {pipeline!r}{when}:")
        for label in sorted(held):
            change = since[label]
            click.echo(printable(
                f"  {label:<10} {held[label]}   since {format_ms(change.time_ms)} "
                f"({change.action} by {change.user}@{change.host}"
                + (f": {change.reason}" if change.reason else "") + ")"))
    if show_history:
        click.echo("History:")
        for c in changes:
            frm = "none" if c.from_version == -1 else str(c.from_version)
            click.echo(printable(
                f"  {format_ms(c.time_ms)}  {c.label:<10} {frm} -> {c.to_version}  "
                f"{c.action} by {c.user}@{c.host}" + (f": {c.reason}" if c.reason else "")))
