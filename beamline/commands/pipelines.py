"""`beamline pipelines`: the current project's pipelines, read without importing TFX."""

from __future__ import annotations

import click


@click.command()
def pipelines() -> None:
    """List the pipelines Beamline can run in this project."""
    from beamline import project, registry

    current = project.current()
    entries = registry.discover(current)
    click.echo(f"# {current.describe()}", err=True)
    width = max((len(n) for n in entries), default=4)
    for name, entry in entries.items():
        click.echo(f"{name:<{width}}  {entry.summary}")
