"""xdist's `loadscope` scheduler with tests/worker_groups.py's groups as its scopes (imported
by the controller only, under pytest-xdist)."""

from __future__ import annotations

import os
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

from tests.worker_groups import GROUPS_FILE_ENV, module_of, read_groups


class GroupScheduling(LoadScopeScheduling):
    """A scope is a group of modules (read once, after the workers collected)."""

    _groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            self._groups = read_groups(Path(os.environ[GROUPS_FILE_ENV]))
        module = module_of(nodeid)
        return self._groups.get(module, module)
