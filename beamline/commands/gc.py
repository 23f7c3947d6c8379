"""`beamline gc`: clean up what killed runs left behind (the next run of a pipeline does too)."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, metadata_option, root_option
from beamline.models.retention import LABELLED_CHOICES, LABELLED_EVER


def keep_data_option(func=None, *, lead: str = "Also delete"):
    """--keep-data N, as gc and (with another `lead`) `data du` take it."""
    option = click.option(
        "--keep-data", type=click.IntRange(1), default=None, metavar="N",
        help=f"{lead} the kept data and code versions (in the run root's `objects/`) of "
        "runs older than each pipeline's newest N; those of a running run and of a labelled "
        "model version (see --labelled) always stay. Without it every run keeps its versions "
        "and only objects no run names are deleted.",
    )
    return option(func) if func is not None else option


def labelled_option(func):
    """--labelled ever|now, as gc and `data du` take it."""
    return click.option(
        "--labelled", type=click.Choice(LABELLED_CHOICES), default=LABELLED_EVER,
        show_default=True,
        help="Whose data and code gc always keeps: `ever`, every model version that holds or "
        "ever held a label; `now`, only one that holds a label now or that a label's rollback "
        "returns to.",
    )(func)


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
    "--keep-versions", type=click.IntRange(1), default=None, metavar="N",
    help="Also remove recorded versions older than the newest N; a version holding a label, "
    "or the one a label's rollback returns to, is always kept.",
)
@keep_data_option
@labelled_option
@click.option(
    "--dry-run", is_flag=True,
    help="Say what would be recorded and removed, and the objects and bytes it would free; "
    "change nothing.",
)
@json_option
def gc(root, metadata, pipeline, unrecorded_versions, keep_versions, keep_data, labelled,
       dry_run, as_json) -> None:
    """Record runs whose runner died as killed, cancel their unfinished executions, and remove
    their unpublished outputs, .temp dirs and run temp dirs, and the object store's temporary
    files a killed writer left; finish recorded pushes a kill left invisible and remove staged
    copies no push recorded. A version holding a label is never
    removed. Pipelines with a live run are skipped. Only paths inside the root are removed: a
    path a store record names outside it is reported as refused.

    Kept data and code versions (`objects/`): deletes every object no kept run names. A run
    keeps its versions when it is running, when it pushed a labelled model version, and
    (with --keep-data N) when it is one of its pipeline's newest N. A store a run is writing
    to is left for the next gc.

    Example:

    \b
        beamline gc --dry-run --unrecorded-versions
        beamline gc --dry-run --keep-data 5
    """
    import json

    from beamline.metadata import labels as history
    from beamline.metadata import labels_file

    layout, store = _open(root, metadata)
    results = [
        _collect(name, layout, store, unrecorded_versions, keep_versions, dry_run)
        for name in _pipelines(layout, store, pipeline)
    ]
    from beamline.versions.store import ObjectStore

    objects = ObjectStore(layout.objects_dir)
    # Temporary files of object-store writers that died (a run killed mid-write); a live
    # writer's are held under flock and stay.
    temps = objects.remove_dead_temp_files(dry_run=dry_run)
    swept = _sweep_objects(objects, store, pipeline, keep_data, labelled, dry_run)
    labels_line = None
    if not dry_run and history.pipelines_with_labels(store):
        with labels_file.labels_lock(layout):
            labels_line = f"labels: {labels_file.sync(store, layout)} agrees with the history"
    if as_json:
        kept = {**swept.to_json(), "temporary_files_removed": [str(p) for p in temps]}
        click.echo(json.dumps({"pipelines": results, "objects": kept}, indent=2))
        return
    for entry in results:
        _print(entry)
    for path in temps:
        click.echo(f"objects: {'would remove' if dry_run else 'removed'} {path} (its writer died)")
    _print_objects(objects, swept)
    if labels_line:
        click.echo(labels_line)


# At most this many deleted objects are named one by one in the text output (--json: all).
_LISTED_OBJECTS = 20


def retention_policy(store, pipeline, keep_data, labelled):
    """What gc keeps of the object store (beamline.versions.retention) under its flags."""
    from beamline.models.retention import labelled_versions
    from beamline.versions import retention

    return retention.Policy(keep_data, labelled_versions(store, labelled), pipeline)


def gc_command(pipeline, keep_data, labelled) -> str:
    """The gc line whose object clean-up `data du` describes."""
    import shlex

    args = ["beamline", "gc"]
    if pipeline:
        args += ["--pipeline", pipeline]
    if keep_data:
        args += ["--keep-data", str(keep_data)]
    if labelled != LABELLED_EVER:
        args += ["--labelled", labelled]
    return shlex.join(args)


def _sweep_objects(objects, store, pipeline, keep_data, labelled, dry_run):
    """The object store's clean-up, after the pipelines': a run recorded killed above no longer
    counts as running."""
    from beamline.versions import retention

    policy = retention_policy(store, pipeline, keep_data, labelled)
    return retention.sweep(objects, store, policy, dry_run)


def _print_objects(objects, swept) -> None:
    click.echo(swept.describe())
    verb = "would delete" if swept.dry_run else "deleted"
    for key in sorted(swept.removed)[:_LISTED_OBJECTS]:
        click.echo(f"  {verb} {objects.directory / key[:2] / key[2:]} "
                   f"({swept.removed[key]:,} bytes)")
    if len(swept.removed) > _LISTED_OBJECTS:
        click.echo(f"  ... and {len(swept.removed) - _LISTED_OBJECTS} more (--json lists all)")
    for key in swept.plan.missing:
        click.echo(f"  missing {key[:12]}: a kept run names it, but it was deleted earlier")
    for refused in swept.plan.refused + swept.refused:
        click.echo(f"  refused {refused}")


def _open(root, metadata):
    from beamline.metadata.connection import open_existing
    from beamline.settings import RootLayout

    layout = RootLayout(root)
    return layout, open_existing(metadata, layout.metadata_path)


def _pipelines(layout, store, pipeline: str | None) -> list[str]:
    """The pipelines to clean: `pipeline`, else every one the store records or the root holds."""
    from beamline.metadata import run_context as rc

    if pipeline:
        return [pipeline]
    recorded = {c.name for c in store.get_contexts_by_type(rc.PIPELINE_CONTEXT)}
    on_disk = (
        {p.name for p in layout.pipelines_dir.iterdir()} if layout.pipelines_dir.is_dir() else set()
    )
    return sorted(recorded | on_disk)


def _collect(
    name: str, layout, store, remove_unrecorded: bool, keep_versions: int | None, dry_run: bool
) -> dict:
    """One pipeline's clean-up (or, with `dry_run`, what it would be) as plain data."""
    from beamline.errors import RunInProgress
    from beamline.lineage.load import load_graph
    from beamline.lineage.runs import unrecorded_versions as find_unrecorded
    from beamline.metadata import labels as history
    from beamline.metadata import labels_file
    from beamline.models import retention
    from beamline.models.pushed import on_disk
    from beamline.runner import cleanup
    from beamline.runner.contained import name_problem
    from beamline.runner.push import recover as recover_pushes
    from beamline.runner.run_lock import PipelineLock

    problem = name_problem(name)
    if problem:  # a name from the store: no path is built from it
        return {"pipeline": name, "skipped": f"the name {problem}, so it names no directory"}
    try:
        with PipelineLock(layout, name, "gc"):
            done = cleanup.remove_leftover_files(layout, name, dry_run=dry_run)
            done.merge(cleanup.record_and_clean_killed_runs(store, layout, name, dry_run=dry_run))
            recovery = recover_pushes(store, layout, name, dry_run=dry_run)
            done.removed += recovery.undone
            recovered = recovery.describe(dry_run=dry_run)
            unrecorded = find_unrecorded(load_graph(store, name), layout.serving_root)
            # Promote and rollback check that a version is on disk under the labels lock: held
            # from reading the history to the last removal, a label recorded before it is seen
            # here (its version kept), and one after it finds the version gone and refuses.
            with labels_file.labels_lock(layout):
                changes = history.history(store, name)
                orphans, kept = retention.split(unrecorded, changes)
                old: list = []
                if keep_versions is not None:
                    recorded = [
                        p for p in on_disk(layout, name)
                        if p not in orphans and all(p != k for k, _ in kept)
                    ]
                    old, kept_old = retention.split(recorded[:-keep_versions], changes)
                    kept += kept_old
                for version in old + (orphans if remove_unrecorded else []):
                    _remove_version(done, layout.serving_dir(name), version)
            if remove_unrecorded:
                orphans = []
    except RunInProgress:
        return {"pipeline": name, "skipped": "a run is in progress"}
    return {
        "pipeline": name,
        "summary": done.describe(),
        **done.to_json(),
        "recovered": recovered,
        "staged_copies_removed": [str(p) for p in recovery.undone],
        "kept": [{"version": str(v), "why": why} for v, why in kept],
        "unrecorded_versions": [str(v) for v in orphans],
    }


def _remove_version(done, serving_dir, version) -> None:
    """Removes `<serving dir>/<version>/` only; anything else a listing held is refused."""
    from beamline.runner import cleanup

    # A path elsewhere goes in whole: absolute, it is refused and reported.
    part = version.name if version.parent == serving_dir else str(version)
    cleanup.remove_inside(done, "version", serving_dir, part)


def _print(entry: dict) -> None:
    name = entry["pipeline"]
    if "skipped" in entry:
        click.echo(f"{name}: {entry['skipped']}; skipped")
        return
    click.echo(f"{name}: {entry['summary']}")
    for line in entry["recovered"]:
        click.echo(f"  {line}")
    verb = "would remove" if entry["dry_run"] else "removed"
    staged = set(entry.get("staged_copies_removed", ()))  # said by the recovery lines above
    for path in entry["removed"]:
        if str(path) not in staged:
            click.echo(f"  {verb} {path}")
    for refused in entry["refused"]:
        click.echo(f"  refused {refused}")
    for kept in entry["kept"]:
        click.echo(f"  kept {kept['version']}: it {'; '.join(kept['why'])}")
    for version in entry["unrecorded_versions"]:
        click.echo(
            f"  unrecorded version {version} (no lineage; --unrecorded-versions removes it)"
        )
