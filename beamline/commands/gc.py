"""`beamline gc`: clean up what killed runs left behind (the next run of a pipeline does too)."""

from __future__ import annotations

import click

from beamline.commands.options import metadata_option, root_option


@click.command()
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
    "--keep-versions", type=click.IntRange(1), default=None, metavar="N",
    help="Also remove recorded versions older than the newest N; a version holding a label, "
    "or the one a label's rollback returns to, is always kept.",
)
def gc(root, metadata, pipeline, unrecorded_versions, keep_versions) -> None:
    """Record runs whose runner died as killed, cancel their unfinished executions, and remove
    their unpublished outputs, .temp dirs and run temp dirs; finish recorded pushes a kill left
    invisible and remove staged copies no push recorded. A version holding a label is never
    removed. Pipelines with a live run are skipped."""
    import shutil

    from beamline.errors import RunInProgress
    from beamline.lineage.load import load_graph
    from beamline.lineage.runs import unrecorded_versions as find_unrecorded
    from beamline.metadata import labels as history
    from beamline.metadata import labels_file
    from beamline.metadata import run_context as rc
    from beamline.metadata.connection import open_existing
    from beamline.models import retention
    from beamline.models.pushed import on_disk
    from beamline.runner import cleanup
    from beamline.runner.push import recover as recover_pushes
    from beamline.runner.run_lock import PipelineLock
    from beamline.settings import RootLayout

    layout = RootLayout(root)
    store = open_existing(metadata, layout.metadata_path)
    names = [pipeline] if pipeline else sorted(
        {c.name for c in store.get_contexts_by_type(rc.PIPELINE_CONTEXT)}
        | ({p.name for p in layout.pipelines_dir.iterdir()} if layout.pipelines_dir.is_dir()
           else set())
    )
    for name in names:
        try:
            with PipelineLock(layout, name, "gc"):
                done = cleanup.remove_leftover_files(layout, name)
                killed = cleanup.record_and_clean_killed_runs(store, layout, name)
                done.killed_runs += killed.killed_runs
                done.canceled_executions += killed.canceled_executions
                done.removed += killed.removed
                recovered = recover_pushes(store, layout, name)
                changes = history.history(store, name)
                orphans, kept = retention.split(
                    find_unrecorded(load_graph(store, name), layout.serving_root), changes
                )
                old: list = []
                if keep_versions is not None:
                    recorded = [p for p in on_disk(layout, name) if p not in orphans
                                and all(p != k for k, _ in kept)]
                    old, kept_old = retention.split(recorded[:-keep_versions], changes)
                    kept += kept_old
                for version in old + (orphans if unrecorded_versions else []):
                    shutil.rmtree(version)
                    done.removed.append(version)
                if unrecorded_versions:
                    orphans = []
        except RunInProgress:
            click.echo(f"{name}: a run is in progress; skipped")
            continue
        click.echo(f"{name}: {done.describe()}")
        for line in recovered.describe():
            click.echo(f"  {line}")
        for path in done.removed:
            click.echo(f"  removed {path}")
        for version, why in kept:
            click.echo(f"  kept {version}: it {'; '.join(why)}")
        for version in orphans:
            click.echo(
                f"  unrecorded version {version} (no lineage; --unrecorded-versions removes it)"
            )
    if history.pipelines_with_labels(store):
        with labels_file.labels_lock(layout):
            click.echo(f"labels: {labels_file.sync(store, layout)} agrees with the history")
