"""A push is recorded before it is visible: the runner's half of the atomic Pusher.

Under Beamline's runner the Pusher executor only stages the new version as
`<serving dir>/.incoming-<version>-<pid>/` and TFX records the PushedModel (destination
`<serving dir>/<version>`). Then, here:

1. `push:recorded`  the staged copy is renamed to `<version>/` (servers see it from now on);
2. `push:visible`   the push policy's label changes are recorded in MLMD (live: `stable`,
                    canary: `canary`), then models.config is rewritten from the history.

Each step is a fault point (beamline/faults.py). Recovery (`recover`, run by the next run of the
pipeline, `beamline gc` and `beamline serve` start-up) finishes or undoes what a killed run left,
from the record: a staged copy whose push MLMD recorded is renamed into place; one that no push
recorded is removed; the newest recorded push whose label step never happened gets it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from beamline.faults import fault_point
from beamline.metadata import labels as label_history
from beamline.metadata import labels_file
from beamline.metadata import records as r
from beamline.metadata import run_context as rc
from beamline.settings import (
    DEFAULT_PUSH_POLICY,
    PUSH_INCOMING_PREFIX,
    PushPolicy,
    RootLayout,
    rest_port,
)


@dataclass
class Recovery:
    finished: list[str] = field(default_factory=list)  # versions renamed into place
    undone: list[Path] = field(default_factory=list)  # staged copies no push recorded
    labelled: list[str] = field(default_factory=list)  # "label -> version" changes recorded
    rewrote: Path | None = None  # models.config, when it disagreed with the history

    def describe(self, dry_run: bool = False) -> list[str]:
        done = "would finish" if dry_run else "finished"
        lines = [f"{done} the recorded push of version {v}" for v in self.finished]
        verb = "would remove" if dry_run else "removed"
        lines += [f"{verb} {p} (a push that was never recorded)" for p in self.undone]
        lines += [f"applied the push policy: {c}" for c in self.labelled]
        if self.rewrote is not None:
            lines.append(f"rewrote {self.rewrote} from the label history")
        return lines


def staged_version(path: Path) -> str | None:
    """The version of a staged copy `.incoming-<version>-<pid>`, else None."""
    if not path.name.startswith(PUSH_INCOMING_PREFIX):
        return None
    version = path.name[len(PUSH_INCOMING_PREFIX):].split("-", 1)[0]
    return version if version.isdigit() else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_visible(staged: Path, destination: Path) -> None:
    """Renames a staged copy into place (one atomic step; fails if the version exists)."""
    os.rename(staged, destination)
    _fsync_dir(destination.parent)


# ---------------------------------------------------------------- what MLMD recorded


@dataclass
class RecordedPush:
    artifact_id: int
    version: str
    destination: Path
    execution_id: int
    run_id: str
    policy: str | None  # the run's push policy, if the runner stamped one


def recorded_pushes(store, serving_dir: Path) -> list[RecordedPush]:
    """Pushes MLMD records as done (a COMPLETE execution's PushedModel, pushed=1) into
    `serving_dir`, oldest first."""
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.proto import metadata_store_pb2 as pb

    try:
        artifacts = store.get_artifacts_by_type(rc.PUSHED_MODEL_TYPE)
    except mlmd_errors.NotFoundError:
        return []
    candidates = {}
    for art in artifacts:
        push = rc.push_from(rc.properties_of(art))
        if push is None or not push[1]:
            continue
        destination = Path(push[1])
        if destination.parent == serving_dir:
            candidates[art.id] = (push[0] or destination.name, destination)
    if not candidates:
        return []
    producers = {
        e.artifact_id: e.execution_id
        for e in store.get_events_by_artifact_ids(list(candidates))
        if e.type == pb.Event.OUTPUT
    }
    executions = {e.id: e for e in store.get_executions_by_id(list(set(producers.values())))}
    out = []
    for aid, (version, destination) in sorted(candidates.items()):
        execution = executions.get(producers.get(aid))
        if execution is None or execution.last_known_state != pb.Execution.COMPLETE:
            continue
        run = rc.run_of(store, execution.id)
        run_id = run.name if run is not None else ""
        policy = rc.properties_of(run).get(r.RUN_PUSH_POLICY) if run is not None else None
        out.append(RecordedPush(aid, version, destination, execution.id, run_id, policy))
    return out


def stamp_policy(store, run_id: str, policy: str) -> None:
    """Records on the run's context which push policy it applies."""
    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    if ctx is None:
        return
    ctx.custom_properties[r.RUN_PUSH_POLICY].string_value = policy
    store.put_contexts([ctx])


# ---------------------------------------------------------------- the label step


def policy_labels(policy: str, held: dict[str, int]) -> list[str]:
    """The labels a blessed push takes under `policy`, given the labels held now.

    live: `stable`. canary: `canary`, and `stable` too while no version holds it (the first push
    has nothing to be compared with; without it unversioned requests would have no target).
    """
    if policy == PushPolicy.CANARY:
        return [r.CANARY_LABEL] + ([] if r.STABLE_LABEL in held else [r.STABLE_LABEL])
    return [r.STABLE_LABEL]


def apply_policy(
    store, layout: RootLayout, pipeline: str, push: RecordedPush, policy: str,
    port: int | None = None,
) -> list[str]:
    """Records the label changes `policy` makes for `push`, then rewrites models.config."""
    with labels_file.labels_lock(layout):
        before = labels_file.current_labels(store)
        held = before.get(pipeline, {})
        labels = policy_labels(policy, held)
        moves = dict.fromkeys(labels, int(push.version))
        labels_file.check_labels(layout, labels_file.with_moves(before, pipeline, moves))
        done = []
        for label in labels:
            label_history.record_change(
                store, pipeline, label, int(push.version), r.LabelAction.PUSH,
                from_version=held.get(label, r.NO_VERSION),
                reason=f"pushed by run {push.run_id} under the {policy} push policy",
                pushed_model_id=push.artifact_id,
            )
            done.append(f"{label} -> {push.version}")
        fault_point("push:labels-recorded")
        labels_file.apply_change(store, layout, before, rest_port(port))
    return done


def labelled_pushes(store, pipeline: str) -> set[int]:
    """The PushedModel ids whose push policy's labels were recorded."""
    return {
        c.pushed_model_id for c in label_history.history(store, pipeline)
        if c.action == r.LabelAction.PUSH and c.pushed_model_id is not None
    }


# ---------------------------------------------------------------- the runner's step


def finish_run_push(
    store, layout: RootLayout, pipeline: str, run_id: str, policy: str
) -> list[str]:
    """After the run's Pusher was recorded: makes its staged version visible, then labels it."""
    serving = layout.serving_dir(pipeline)
    mine = [p for p in recorded_pushes(store, serving) if p.run_id == run_id]
    lines = []
    for push in mine:
        staged = _staged_copies(serving, push.version)
        if not staged:
            continue  # pushed by a stock executor (already visible) or not a local push
        fault_point("push:recorded")
        make_visible(staged[0], push.destination)
        fault_point("push:visible")
        lines += apply_policy(store, layout, pipeline, push, policy)
    return lines


def _staged_copies(serving: Path, version: str) -> list[Path]:
    if not serving.is_dir():
        return []
    return sorted(p for p in serving.glob(f"{PUSH_INCOMING_PREFIX}{version}-*") if p.is_dir())


# ---------------------------------------------------------------- recovery


def recover(
    store, layout: RootLayout, pipeline: str, port: int | None = None, dry_run: bool = False
) -> Recovery:
    """Finishes or undoes what killed pushes of `pipeline` left (call holding its run lock).

    With `dry_run`, says which staged copies it would finish or remove and changes nothing
    (the label step and the models.config rewrite are then left out).
    """
    result = Recovery()
    serving = layout.serving_dir(pipeline)
    pushes = recorded_pushes(store, serving)
    by_version = {p.version: p for p in pushes}
    if serving.is_dir():
        for staged in sorted(serving.glob(PUSH_INCOMING_PREFIX + "*")):
            version = staged_version(staged)
            push = by_version.get(version) if version else None
            if push is not None and not push.destination.exists() and staged.is_dir():
                if not dry_run:
                    make_visible(staged, push.destination)
                result.finished.append(version)
            else:
                if not dry_run:
                    shutil.rmtree(staged, ignore_errors=True)
                result.undone.append(staged)
    if dry_run:
        return result
    # The label step: only the newest push can still be owed one (later pushes supersede it).
    if pushes:
        newest = pushes[-1]
        if (
            newest.policy
            and newest.destination.is_dir()
            and newest.artifact_id not in labelled_pushes(store, pipeline)
        ):
            result.labelled += apply_policy(store, layout, pipeline, newest, newest.policy, port)
    if not result.labelled:
        result.rewrote = resync(store, layout)
    return result


def resync(store, layout: RootLayout) -> Path | None:
    """Rewrites models.config when it disagrees with the label history (a kill between the
    record and the write); returns its path then."""
    if not label_history.pipelines_with_labels(store):
        return None
    with labels_file.labels_lock(layout):
        return labels_file.resync(store, layout)


def policy_of(module, requested: str | None) -> str:
    """The run's push policy: --push-policy, else the pipeline module's PUSH_POLICY, else live."""
    from beamline.errors import ConfigError

    policy = requested or getattr(module, "PUSH_POLICY", None) or DEFAULT_PUSH_POLICY
    if policy not in PushPolicy.ALL:
        raise ConfigError(
            f"Push policy {policy!r} (PUSH_POLICY in the pipeline module, or --push-policy) is "
            f"not one of {', '.join(PushPolicy.ALL)}: `live` serves a blessed push at once, "
            "`canary` gives it the canary label and keeps stable where it is."
        )
    return policy
