"""A run root as one command uses it: its layout and its MLMD store, opened once.

A command builds one Workspace from its --root and --metadata and passes it down; whatever it
calls reads `workspace.layout` for paths and `workspace.store` for the records, so the store is
opened at most once per command (on first use: a command that fails before it needs the store
never opens it) and released when the command's `with` ends. TFX's own launchers open their own
connections while nodes run; those are TFX's, not the command's.
"""

from __future__ import annotations

import functools
from pathlib import Path

from beamline.settings import RootLayout


class Workspace:
    """`layout` (paths under the run root) and `store` (its MLMD store, opened on first use).

    `existing=True` (commands that read what runs left): a missing SQLite store is an error,
    never a new empty one. `existing=False` (commands that write runs): the store is created
    when missing.
    """

    def __init__(self, root: Path, metadata: str | None = None, existing: bool = True) -> None:
        self.layout = RootLayout(Path(root))
        self.metadata = metadata
        self.existing = existing
        self._store = None

    @property
    def root(self) -> Path:
        return self.layout.root

    @functools.cached_property
    def connection_config(self):
        """The store's MLMD ConnectionConfig, checked once (a bad --metadata is a ConfigError,
        an unreachable MySQL server a MetadataUnreachable)."""
        from beamline.metadata.connection import connection_config

        return connection_config(self.metadata, self.layout.metadata_path)

    @property
    def source(self) -> str:
        """The store as messages name it (the SQLite path, or the MySQL target)."""
        from beamline.metadata.connection import describe

        return describe(self.metadata, self.layout.metadata_path)

    @property
    def store(self):
        """The MetadataStore, opened the first time it is asked for."""
        if self._store is None:
            from beamline.metadata.connection import open_existing, open_store

            self._store = (
                open_existing(self.metadata, self.layout.metadata_path) if self.existing
                else open_store(self.connection_config)
            )
        return self._store

    @property
    def opened(self) -> bool:
        return self._store is not None

    def close(self) -> None:
        """Releases the store (MLMD closes its connection when the last reference goes)."""
        self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
