"""Which model version a request reached, for the request's outcome record.

The data plane resolves the version deep inside an adapter's handling (after decoding, before
the checks against the signature), and a request can fail after that: its outcome still belongs
to that version. The adapter opens a scope per request; the data plane notes the version in it.
A ContextVar, not an argument threaded through every handler: each request runs in its own
asyncio task (or sequentially in one), and a context variable is per task.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class AnsweredVersion:
    """The version one request reached (None until the data plane resolves one)."""

    version: int | None = None


_CURRENT: ContextVar[AnsweredVersion | None] = ContextVar("beamline_answered_version", default=None)


def begin() -> AnsweredVersion:
    """A new scope for the request being handled in this task."""
    scope = AnsweredVersion()
    _CURRENT.set(scope)
    return scope


def note(version: int) -> None:
    """Records the version the current request reached (no-op outside a scope)."""
    scope = _CURRENT.get()
    if scope is not None:
        scope.version = version
