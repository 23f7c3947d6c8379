"""Promote and roll back: the checks a version must pass, and the recorded label change.

Every change is checked against what the model server can serve, recorded in MLMD
(beamline.metadata.labels), then models.config is rewritten from the history
(beamline.metadata.labels_file, the files' one writer), all under the labels lock, so
concurrent promotes serialize and the file never disagrees with the record it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError, PromoteRefused
from beamline.lineage.model import Graph
from beamline.lineage.push_notes import not_blessed
from beamline.metadata import labels as history_of
from beamline.metadata import labels_file
from beamline.metadata import records as r
from beamline.models.pushed import PushedVersion, describe_version, is_model, trained_model_of
from beamline.settings import RootLayout

# TF Serving's documented label syntax (its REST regex accepts more, its docs say this).
_LABEL = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class Outcome:
    change: history_of.LabelChange | None  # None: nothing to change
    config_path: Path
    message: str


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise ConfigError(
            f"--label {label!r} is not a version label TF Serving accepts: use letters, digits "
            "and underscores (e.g. stable, canary, shadow_2)."
        )
    return label


def promotable(graph: Graph, layout: RootLayout, pipeline: str, version: int) -> PushedVersion:
    """The version if it may take a label; PromoteRefused naming the failed check if not."""
    path = layout.serving_dir(pipeline) / str(version)
    if not path.is_dir() or not is_model(path):
        on_disk = sorted(
            (p.name for p in layout.serving_dir(pipeline).glob("[0-9]*") if p.is_dir()),
            key=int,
        ) if layout.serving_dir(pipeline).is_dir() else []
        raise PromoteRefused(
            f"Version {version} of {pipeline!r} is not on disk: {path} "
            f"{'holds no SavedModel' if path.is_dir() else 'does not exist'}. Versions on disk: "
            f"{', '.join(on_disk[-8:]) or 'none'} (`beamline models {pipeline}` lists them)."
        )
    found = describe_version(graph, path, metrics=False)
    if not found.recorded:
        raise PromoteRefused(
            f"Version {version} of {pipeline!r} ({path}) was not recorded as pushed by any run "
            f"in {graph.source}, so nothing vouches for what it is{_origin(graph, path)}. "
            "Only versions a run pushed can take a label: run the pipeline to push a model, "
            f"or remove the directory (`beamline gc --unrecorded-versions`)."
        )
    if found.blessed is None:
        raise PromoteRefused(
            f"Version {version} of {pipeline!r} was pushed by run {found.run_id} without a "
            "blessing: its Pusher had no Evaluator's model_blessing input, so no check passed. "
            "Add an Evaluator to the pipeline and push a blessed model."
        )
    if not found.blessed:
        raise PromoteRefused(
            f"Version {version} of {pipeline!r} (run {found.run_id}) is not promotable: "
            f"{not_blessed(graph, found.blessing.id)}. `beamline why Pusher --run "
            f"{found.run_id}` shows the evaluation."
        )
    return found


def _origin(graph: Graph, path: Path) -> str:
    """Where a hand-copied version came from, when it is a model a run trained."""
    model = trained_model_of(graph, path)
    trainer = graph.producer(model.id) if model is not None else None
    if trainer is None:
        return ""
    where = f"; it is the model trained by run {trainer.run_id} ({trainer.node_id} #{trainer.id})"
    for consumer in graph.consumers(model.id):
        for aid in consumer.output_ids():
            art = graph.artifacts.get(aid)
            if art is not None and art.type == "ModelBlessing" and art.prop("blessed") == 0:
                return where + f", copied here by hand: {not_blessed(graph, aid)}"
    return where + ", copied here by hand rather than pushed"


def promote(
    store, graph: Graph, layout: RootLayout, pipeline: str, version: int, label: str,
    reason: str = "", rest_port: int | None = None,
) -> Outcome:
    """Moves `label` to `version` after the checks; recorded, then written."""
    check_label(label)
    with labels_file.labels_lock(layout):
        # Checked under the lock `gc` holds while it removes versions: a version checked before
        # could be gone by the time the label is recorded.
        found = promotable(graph, layout, pipeline, version)
        before = labels_file.current_labels(store)
        held = before.get(pipeline, {})
        if held.get(label) == version:
            path = labels_file.sync(store, layout)
            return Outcome(None, path, f"{label} already holds version {version}; nothing changed")
        labels_file.check_labels(layout, labels_file.with_moves(before, pipeline, {label: version}))
        change = history_of.record_change(
            store, pipeline, label, version, r.LabelAction.PROMOTE,
            from_version=held.get(label, r.NO_VERSION), reason=reason,
            pushed_model_id=found.pushed_model.id,
        )
        path = labels_file.apply_change(store, layout, before, rest_port)
    was = held.get(label)
    return Outcome(change, path, f"{label}: {was if was is not None else 'none'} -> {version}")


def rollback(
    store, graph: Graph, layout: RootLayout, pipeline: str, label: str, reason: str = "",
    rest_port: int | None = None,
) -> Outcome:
    """Moves `label` back to the version that held it before the current holder."""
    check_label(label)
    with labels_file.labels_lock(layout):
        changes = history_of.history(store, pipeline)
        stack = history_of.holder_stack(changes, label)
        if not stack:
            raise PromoteRefused(
                f"Label {label!r} of {pipeline!r} has no history: no version ever held it, so "
                f"there is nothing to roll back to (`beamline labels {pipeline}`)."
            )
        if len(stack) < 2:
            raise PromoteRefused(
                f"Label {label!r} of {pipeline!r} has no earlier holder: version {stack[-1]} is "
                "the first that held it. Promote another version instead "
                f"(`beamline models {pipeline}` lists them)."
            )
        current, target = stack[-1], stack[-2]
        path = layout.serving_dir(pipeline) / str(target)
        if not path.is_dir() or not is_model(path):
            raise PromoteRefused(
                f"Label {label!r} of {pipeline!r} would go back to version {target}, which held "
                f"it before {current}, but {path} is no longer on disk. Promote another version "
                "instead."
            )
        found = describe_version(graph, path, metrics=False)
        before = labels_file.current_labels(store)
        labels_file.check_labels(layout, labels_file.with_moves(before, pipeline, {label: target}))
        change = history_of.record_change(
            store, pipeline, label, target, r.LabelAction.ROLLBACK, from_version=current,
            reason=reason,
            pushed_model_id=found.pushed_model.id if found.pushed_model is not None else None,
        )
        config = labels_file.apply_change(store, layout, before, rest_port)
    return Outcome(change, config, f"{label}: {current} -> {target} (rolled back)")
