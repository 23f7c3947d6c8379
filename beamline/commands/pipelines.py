"""`beamline pipelines`: the current project's pipelines, read without importing TFX."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option


@click.command(cls=Command)
@json_option
def pipelines(as_json: bool) -> None:
    """List the pipelines Beamline can run.

    Example:

    \b
        beamline pipelines --json
    """
    import json

    from beamline import project, registry

    current = project.current()
    entries = registry.discover(current)
    if as_json:
        rows = [
            {"name": name, "summary": e.summary, "path": str(e.path), "schema": str(e.schema_path)}
            for name, e in entries.items()
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"# {current.describe()}", err=True)
    width = max((len(n) for n in entries), default=4)
    for name, entry in entries.items():
        click.echo(f"{name:<{width}}  {entry.summary}")
