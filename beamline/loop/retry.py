"""Transient errors, named and retried with backoff: the metadata store unreachable (a MySQL
server restarting), the store busy (SQLite's "database is locked" while a run writes), a lock
held a moment. Anything else is not retried: it is a real failure and the loop reports it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO, TypeVar

from beamline.errors import MetadataUnreachable

T = TypeVar("T")
ATTEMPTS = 5
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
_BUSY = ("database is locked", "database is busy", "lock wait timeout", "deadlock")


def transient(exc: BaseException) -> str | None:
    """What kind of transient error `exc` is, or None when it is not one."""
    if isinstance(exc, MetadataUnreachable):
        return "metadata store unreachable"
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    text = str(exc).lower()
    if module.startswith("ml_metadata") and name in (
        "UnavailableError", "AbortedError", "DeadlineExceededError"
    ):
        return "metadata store unavailable"
    if any(b in text for b in _BUSY) and (
        module.startswith(("ml_metadata", "sqlite3")) or name == "OperationalError"
    ):
        return "metadata store busy"
    return None


def with_retries(
    action: Callable[[], T],
    what: str,
    out: TextIO,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """`action()`, retried on transient errors (1 s, 2 s, 4 s ... up to 30 s between tries);
    the last transient error is raised when all attempts failed."""
    delay = FIRST_DELAY_S
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            kind = transient(exc)
            if kind is None or attempt == attempts:
                raise
            out.write(
                f"beamline loop: {what}: transient error ({kind}: {str(exc).strip()[:200]}); "
                f"retry {attempt}/{attempts - 1} in {delay:g} s\n"
            )
            out.flush()
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
    raise AssertionError("unreachable")
