"""Which version directories `beamline gc` may remove: never one a label holds, nor the one a
label's rollback would return to."""

from __future__ import annotations

from pathlib import Path

from beamline.metadata.labels import LabelChange, holder_stack, holders


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
