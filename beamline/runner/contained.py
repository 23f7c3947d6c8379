"""Paths Beamline deletes, proven to lie inside the directory that owns them.

Names that come from records (an ML Metadata store may be shared, or received from someone else)
or from a directory listing are joined to a base Beamline owns (a pipeline root, the serving
directory, the run temp root) only after each is checked: one plain file name, never absolute,
never `.` or `..`, and no symlink below the base. The joined path is then resolved and must still
lie inside the resolved base. The base itself may be a symlink: the operator chose it.

A refused path is reported, never followed: callers record `Outside` in what they print.
"""

from __future__ import annotations

import os
from pathlib import Path


class Outside(ValueError):
    """A path that would leave the directory that owns it; the message says why."""


def name_problem(part: str) -> str | None:
    """Why `part` is not one plain file name (None: it is)."""
    if not part or part == ".":
        return "is empty or '.'"
    if part.startswith("/"):
        return "is an absolute path"
    if part == ".." or "/" in part:
        return "is not one plain file name (it holds '/' or is '..')"
    if "\0" in part:
        return "holds a NUL character"
    return None


def inside(base: Path, *parts: str) -> Path:
    """`base/parts...`, resolved, when it lies inside `base`; Outside saying why otherwise."""
    joined = base.joinpath(*parts) if parts else base
    for part in parts:
        problem = name_problem(str(part))
        if problem:
            raise Outside(f"{part!r} {problem}")
    step = base
    for part in parts:
        step = step / part
        if os.path.islink(step):
            raise Outside(f"{step} is a symlink")
    root = base.resolve()
    resolved = joined.resolve()
    if resolved == root:
        raise Outside(f"{joined} is {root} itself, not a path inside it")
    if not resolved.is_relative_to(root):
        raise Outside(f"{joined} resolves to {resolved}, outside {root}")
    return resolved


def contained(base: Path, *parts: str) -> Path | None:
    """`inside`, or None when the path would leave `base`."""
    try:
        return inside(base, *parts)
    except Outside:
        return None
