"""`beamline pipelines`: the pipelines in pipelines/, read without importing TFX."""

from __future__ import annotations

import click


@click.command()
def pipelines() -> None:
    """List the pipelines Beamline can run."""
    from beamline import registry

    entries = registry.discover()
    width = max((len(n) for n in entries), default=4)
    for name, entry in entries.items():
        click.echo(f"{name:<{width}}  {entry.summary}")
