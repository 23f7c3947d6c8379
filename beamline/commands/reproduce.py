"""`beamline reproduce`: a model version trained again from its kept data and code, compared."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.help import Command
from beamline.commands.options import beam_option, json_option, store_options

DEFAULT_TOLERANCE = 1e-6  # beamline.experiments.reproduce.DEFAULT_TOLERANCE (a test holds both)


@click.command(cls=Command)
@click.argument("ref", metavar="VERSION|LABEL")
@store_options
@click.option("--to", "target", type=click.Path(path_type=Path), default=None,
              metavar="NEWROOT", help="A new or empty directory: the reproduction's run root, "
              "with the restored data and code under NEWROOT/checkout/ [default: a new "
              "directory beside --root, named after the version].")
@click.option("--tolerance", type=click.FloatRange(min=0), default=DEFAULT_TOLERANCE,
              show_default=True, help="A metric counts as reproduced when it differs by at most "
              "this, relative to its size (absolute below 1).")
@beam_option(default=None, help_text="The Beam profile to run on [default: the one the original "
             "run recorded; auto for a run recorded before runs recorded theirs].")
@json_option
def reproduce(ref, root, metadata, pipeline, target, tolerance, beam_profile, as_json) -> None:
    """Train model version VERSION (or the one holding LABEL) again from the data and code its
    run kept, with the run's recorded settings (its overrides, and the hyperparameters that
    reached its Trainer fixed: no new search) on its Beam profile, TensorFlow's deterministic
    ops and fixed seeds,
    in a new run root; then show what differs: inputs, code, settings and each metric.

    Example:

    \b
        beamline reproduce stable --pipeline penguin --to /tmp/penguin-again
    """
    import datetime
    import json
    import os
    import subprocess
    import sys

    from beamline.experiments import reproduce as rp
    from beamline.lineage.access import graph_of
    from beamline.metadata import run_context as rc
    from beamline.metadata.workspace import Workspace
    from beamline.settings import RootLayout
    from beamline.versions.checkout import require_empty
    from beamline.versions.store import ObjectStore

    if target is not None:
        require_empty(target)  # before any store is opened: the cheapest refusal first
    workspace = Workspace(root, metadata)
    store = workspace.store
    pipeline, version = rp.version_of(store, ref, pipeline, workspace.source)
    objects = ObjectStore(RootLayout(root).objects_dir)
    graph = graph_of(workspace, pipeline)
    original = rp.find_original(store, graph, pipeline, version, objects)
    if target is None:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        target = rp.default_target(root, pipeline, version, now)
    target = target.expanduser().resolve()
    created = not target.exists()
    try:
        restored = rp.restore(objects, original, target)
    except BaseException:
        _remove_written(target, created)  # nothing of a half-restored checkout stays
        raise
    args = rp.run_arguments(original, target, restored, beam_profile)
    say = (lambda text: click.echo(text, err=True)) if as_json else click.echo
    say(f"beamline: reproducing model version {version} of {pipeline!r}: run {original.run_id}, "
        f"data version {original.data_key[:12]}, code version {original.code_key[:12]}, "
        f"restored under {target / rp.CHECKOUT_DIR}")
    say("beamline: deterministic ops and fixed seeds (TF_DETERMINISTIC_OPS=1, PYTHONHASHSEED=0); "
        f"beamline {' '.join(args)}")
    for name in original.unfixed():
        say(f"beamline: hyperparameter {name} cannot be fixed with --set (not a number): the "
            "Tuner chooses it again")
    sys.stdout.flush()
    code = subprocess.run(
        [sys.executable, "-m", "beamline", *args],
        env=rp.run_environment(restored, os.environ),
        stdout=sys.stderr if as_json else None,
    ).returncode
    if code != 0:
        raise rp.failed_run(code, target, f"; logs in {RootLayout(target).logs_dir}")
    new = Workspace(target, None)
    new_graph = graph_of(new, pipeline)
    run_b = new_graph.sorted_runs(pipeline)[-1].id
    props_b = rc.properties_of(new.store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_b))
    comparison = rp.compare(original, graph, new_graph, run_b, objects,
                            ObjectStore(RootLayout(target).objects_dir), props_b, target,
                            tolerance)
    comparison.notes += [f"hyperparameter {n} was chosen by a new search (not a number, "
                         "--set cannot fix it)" for n in original.unfixed()]
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=2, default=str))
    else:
        click.echo("")
        click.echo(rp.render(comparison))


def _remove_written(target: Path, created: bool) -> None:
    """Removes what a failed restore wrote: the directory it created, or the contents of the
    empty directory it was given."""
    import shutil

    if not target.exists():
        return
    if created:
        shutil.rmtree(target, ignore_errors=True)
        return
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
