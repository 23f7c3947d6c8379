"""An MLMD handle whose store calls are serialized across threads.

Beamline runs several TFX launchers at once in one process. Each MLMD call is its own
transaction, but SQLite answers concurrent writers from several connections with "database is
locked"; one process-wide lock around each store call keeps concurrent nodes safe without
changing what TFX writes.
"""

from __future__ import annotations

import functools
import threading

from tfx.orchestration import metadata

_STORE_LOCK = threading.RLock()


def store_lock() -> threading.RLock:
    """The process-wide lock: hold it across a read-modify-write of one MLMD record, so that no
    other thread's write lands between the read and the write."""
    return _STORE_LOCK


class _LockedStore:
    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def locked(*args, **kwargs):
            with _STORE_LOCK:
                return attr(*args, **kwargs)

        return locked


class SerializedMetadata(metadata.Metadata):
    """tfx.orchestration.metadata.Metadata with thread-serialized store calls."""

    def __enter__(self) -> SerializedMetadata:
        with _STORE_LOCK:
            super().__enter__()
        return self

    @property
    def store(self):
        return _LockedStore(super().store)
