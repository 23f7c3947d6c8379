"""`beamline gc`: clean up what killed runs left behind (the next run of a pipeline does too)."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, metadata_option, root_option


@click.command(cls=Command)
@root_option()
@metadata_option
@click.option("--pipeline", "-p", default=None, help="Only this pipeline (default: all).")
@click.option(
    "--unrecorded-versions",
    is_flag=True,
    help="Also remove model versions under <root>/serving/ that no run recorded (a push killed "
    "between making the version visible and recording it).",
)
@click.option(
    "--dry-run", is_flag=True, help="Say what would be recorded and removed; change nothing."
)
@json_option
def gc(root, metadata, pipeline, unrecorded_versions, dry_run, as_json) -> None:
    """Record runs whose runner died as killed, cancel their unfinished executions, and remove
    their unpublished outputs, .temp dirs, run temp dirs and half-copied pushes. Pipelines with
    a live run are skipped.

    Example:

    \b
        beamline gc --dry-run --unrecorded-versions
    """
    import json

    layout_store = _open(root, metadata)
    results = [
        _collect(name, layout_store, unrecorded_versions, dry_run)
        for name in _pipelines(*layout_store, pipeline)
    ]
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for entry in results:
        _print(entry)


def _open(root, metadata):
    from beamline.metadata.connection import open_existing
    from beamline.settings import RootLayout

    layout = RootLayout(root)
    return layout, open_existing(metadata, layout.metadata_path)


def _pipelines(layout, store, pipeline: str | None) -> list[str]:
    from beamline.metadata import run_context as rc

    if pipeline:
        return [pipeline]
    recorded = {c.name for c in store.get_contexts_by_type(rc.PIPELINE_CONTEXT)}
    on_disk = (
        {p.name for p in layout.pipelines_dir.iterdir()} if layout.pipelines_dir.is_dir() else set()
    )
    return sorted(recorded | on_disk)


def _collect(name: str, layout_store, remove_unrecorded: bool, dry_run: bool) -> dict:
    """One pipeline's clean-up (or, with `dry_run`, what it would be) as plain data."""
    import shutil

    from beamline.errors import RunInProgress
    from beamline.lineage.load import load_graph
    from beamline.lineage.runs import unrecorded_versions as find_unrecorded
    from beamline.runner import cleanup
    from beamline.runner.run_lock import PipelineLock

    layout, store = layout_store
    try:
        with PipelineLock(layout, name, "gc"):
            done = cleanup.remove_leftover_files(layout, name, dry_run=dry_run)
            killed = cleanup.record_and_clean_killed_runs(store, layout, name, dry_run=dry_run)
            done.killed_runs += killed.killed_runs
            done.canceled_executions += killed.canceled_executions
            done.removed += killed.removed
            orphans = find_unrecorded(load_graph(store, name), layout.serving_root)
            if remove_unrecorded:
                for version in orphans:
                    if not dry_run:
                        shutil.rmtree(version)
                    done.removed.append(version)
                orphans = []
    except RunInProgress:
        return {"pipeline": name, "skipped": "a run is in progress"}
    return {
        "pipeline": name,
        "summary": done.describe(),
        **done.to_json(),
        "unrecorded_versions": [str(v) for v in orphans],
    }


def _print(entry: dict) -> None:
    name = entry["pipeline"]
    if "skipped" in entry:
        click.echo(f"{name}: {entry['skipped']}; skipped")
        return
    click.echo(f"{name}: {entry['summary']}")
    verb = "would remove" if entry["dry_run"] else "removed"
    for path in entry["removed"]:
        click.echo(f"  {verb} {path}")
    for version in entry["unrecorded_versions"]:
        click.echo(
            f"  unrecorded version {version} (no lineage; --unrecorded-versions removes it)"
        )
