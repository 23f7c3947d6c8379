"""Which version directories `beamline gc` may remove: never one a label holds, nor the one a
label's rollback would return to; and which model versions' kept data and code gc keeps."""

from __future__ import annotations

from pathlib import Path

from beamline.metadata.labels import LabelChange, holder_stack, holders

LABELLED_EVER = "ever"  # every version that holds or ever held a label
LABELLED_NOW = "now"  # the versions `protected` keeps: holding a label, or a rollback's target
LABELLED_CHOICES = (LABELLED_EVER, LABELLED_NOW)


def protected(changes: list[LabelChange]) -> dict[int, list[str]]:
    """version -> why it must stay ("holds stable", "a rollback of canary returns to it"),
    the labels it holds first."""
    out: dict[int, list[str]] = {}
    held = sorted(holders(changes).items())
    for label, version in held:
        out.setdefault(version, []).append(f"holds {label}")
    for label, _ in held:
        stack = holder_stack(changes, label)
        if len(stack) >= 2:
            out.setdefault(stack[-2], []).append(f"a rollback of {label} returns to it")
    return out


def split(
    candidates: list[Path], changes: list[LabelChange]
) -> tuple[list[Path], list[tuple[Path, list[str]]]]:
    """(removable, [(kept, why)]) among `candidates` (version directories)."""
    keep = protected(changes)
    removable = [p for p in candidates if int(p.name) not in keep]
    kept = [(p, keep[int(p.name)]) for p in candidates if int(p.name) in keep]
    return removable, kept


def labelled_versions(store, how: str = LABELLED_EVER) -> dict[tuple[str, int], str]:
    """(pipeline, model version) -> why gc keeps its data and code (beamline.versions.retention):
    with LABELLED_EVER every version a label ever pointed at, with LABELLED_NOW the ones
    `protected` names."""
    from beamline.metadata import labels as history
    from beamline.metadata.records import NO_VERSION

    out: dict[tuple[str, int], str] = {}
    for pipeline in history.pipelines_with_labels(store):
        changes = history.history(store, pipeline)
        if how == LABELLED_EVER:
            for change in changes:
                for version in (change.to_version, change.from_version):
                    if version != NO_VERSION:
                        out.setdefault((pipeline, version), f"model {version} held {change.label}")
        else:
            for version, why in protected(changes).items():
                out[(pipeline, version)] = f"model {version} {'; '.join(why)}"
    return out
