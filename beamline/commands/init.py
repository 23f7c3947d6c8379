"""`beamline init DIR`: a new project of your own, from one of the bundled examples."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.help import Command

TEMPLATE_NAMES = ("penguin", "taxi")


@click.command("init", cls=Command)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--template", type=click.Choice(TEMPLATE_NAMES), default="penguin",
              show_default=True, help="The example pipeline the project starts from.")
def init_command(directory: Path, template: str) -> None:
    """Create a Beamline project in DIRECTORY (new or empty): pyproject.toml with
    [tool.beamline], pipelines/, components/, schemas/, a data sample, a test and a README.

    Example:

    \b
        beamline init my-project --template penguin
    """
    from beamline.scaffold import init

    root = init(directory, template)
    click.echo(
        f"beamline: created a project in {root} from the {template} example.\n"
        f"  cd {root}\n"
        f"  beamline run {template:<12}# trains, evaluates and pushes a model\n"
        f"  beamline serve{'':<11}# serves what the run pushed"
    )
