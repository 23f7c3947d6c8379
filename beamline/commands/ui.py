"""`beamline ui`: a read-only web UI over the run root and its metadata store."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.help import Command
from beamline.commands.options import metadata_option, root_option


@click.command(cls=Command)
@root_option("Run root whose metadata.sqlite, logs and pushed models to show.")
@metadata_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback requires a token.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8470,
    show_default=True,
    help="Port to listen on (0: a free one).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File holding the access token [default: $BEAMLINE_UI_TOKEN, or a fresh "
    "token printed at start when --host is not loopback].",
)
@click.option(
    "--requests",
    "requests_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Request log directory of the server (`beamline serve --request_log_dir`): each "
    "pipeline page then compares stable and canary over the last 24 hours.",
)
def ui(root, metadata, host, port, token_file, requests_dir) -> None:
    """Serve the UI: runs (live), a run's DAG, Gantt, why, artifacts and log, run comparison,
    model versions with lineage, metrics and labels, and the loop's monitoring and triggers.
    Read-only: nothing it serves can change the store. Ctrl-C stops it.

    Example:
        beamline ui --root beamline_runs --port 8470
    """
    from beamline.ui.server import UiSettings, make_app, make_server, resolve_token, startup_lines

    settings = UiSettings(Path(root), metadata, host, port, token_file, requests_dir)
    token, source = resolve_token(settings)
    server = make_server(settings, make_app(settings, token))
    for line in startup_lines(settings, server.server_port, token, source):
        click.echo(line)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.server_close()
