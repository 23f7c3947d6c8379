"""`beamline flink up|down|status|fetch`: a local Apache Flink cluster for `--beam flink`."""

from __future__ import annotations

import click

from beamline.commands.help import Group
from beamline.commands.options import metadata_option, root_option


@click.group(cls=Group)
def flink() -> None:
    """A local Flink cluster (JobManager, TaskManager, Beam worker pool) on 127.0.0.1.

    Fetched once into $BEAMLINE_FLINK_HOME (default ~/.cache/beamline/flink): the Beam runner
    jar (Maven, pinned coordinates) and Flink (pip, pinned). Then `beamline run PIPELINE
    --beam flink` runs every Beam node on it.

    Example:

    \b
        beamline flink up && beamline run penguin --no-tune --beam flink
    """


def _home():
    from beamline.flink.home import FlinkHome

    return FlinkHome.default()


def _print_endpoints(state) -> None:
    click.echo(f"  REST API / web UI  http://{state.rest}")
    click.echo(f"  Beam worker pool   {state.worker_pool}")
    click.echo(f"  runner jar         {state.jar}")
    click.echo("  run a pipeline on it: beamline run PIPELINE --beam flink")


@flink.command()
def fetch() -> None:
    """Build/install the pinned runner jar and Flink into the cache (no cluster started)."""
    from beamline.flink.fetch import ensure_all

    home = _home()
    ensure_all(home, click.echo)
    click.echo(f"flink: cache ready in {home.root}")


@flink.command()
def up() -> None:
    """Start the local cluster (the parts not running); a second `up` is a no-op."""
    from beamline.flink import cluster

    state = cluster.up(_home(), click.echo)
    _print_endpoints(state)


@flink.command()
def down() -> None:
    """Stop exactly the processes `flink up` started (by their recorded pids)."""
    from beamline.flink import cluster

    cluster.down(_home(), click.echo)


@flink.command()
@root_option("Run root whose metadata to check for dead runs' Flink jobs.")
@metadata_option
def status(root, metadata) -> None:
    """Each part, its endpoint and health; cancels Flink jobs left by dead runs."""
    from beamline.flink import cluster, orphans
    from beamline.flink.cluster import ClusterState

    home = _home()
    state = ClusterState.load(home)
    if state is None:
        click.echo(f"flink: no local cluster recorded in {home.state_file} "
                   "(`beamline flink up` starts one)")
    rows = cluster.health(home, state)
    for row in rows:
        proc = (f"pid {row.pid} {'running' if row.running else 'NOT running'}"
                if row.pid else "not started by `flink up`")
        mark = "ok  " if row.healthy else "DOWN"
        click.echo(f"  {mark} {row.part:<12} {row.endpoint:<32} {proc}; {row.detail}")
    store = _store(root, metadata)
    if store is not None:
        canceled = orphans.cancel_orphans(store)
        if canceled:
            click.echo(f"flink: {orphans.describe(canceled)}")
    if state is not None and not all(r.healthy and r.running for r in rows):
        raise SystemExit(13)


def _store(root, metadata):
    """The run root's MLMD store, or None when there is none yet."""
    from beamline.settings import RootLayout

    layout = RootLayout(root)
    if metadata is None and not layout.metadata_path.exists():
        return None
    from beamline.metadata.connection import connection_config, open_store

    try:
        return open_store(connection_config(metadata, layout.metadata_path))
    except Exception:  # noqa: BLE001 - status shows the cluster whatever the store does
        return None
