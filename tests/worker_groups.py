"""Which tests run together when `make test` splits the suite over two pytest-xdist workers.

A session fixture runs once in every worker that asks for it and a module fixture once in every
worker that runs one of its module's tests; most of the suite's time is such fixtures (real
pipeline runs, a Flink cluster, model servers). So a module's tests stay together, and modules
that share a session fixture (transitively) form one group, run by one worker: the session's
penguin runs, for example, still happen once. Modules of one directory that start or inspect
machine-wide state (the local Flink cluster under ~/.cache) are kept together too.

How: each worker collects, groups and orders the tests (the same way in every worker, as xdist
requires) and writes the module-to-group map to the file named by GROUPS_FILE_ENV, which the
controller set before it started the workers; the controller's scheduler, xdist's `loadscope`
with this map as its scope, hands the groups out heaviest first (`--no-loadscope-reorder`
keeps the workers' order), so the long ones start at once and the short ones fill in at the end.
(xdist's own `loadgroup` renames test ids to carry the group, which pytest 9 ignores.)
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

GROUPS_FILE_ENV = "BEAMLINE_TEST_GROUPS_FILE"

# Session fixtures that are cheap to run twice and must not glue unrelated modules together.
UNSHARED_SESSION_FIXTURES = frozenset({"tmp_path_factory", "worker_id", "testrun_uid"})
# Directories whose modules all go to one worker (machine-wide state).
ONE_WORKER_DIRECTORIES = ("tests/beamline/flink/",)


@dataclass(frozen=True)
class Collected:
    """What the grouping needs of a collected test."""

    module: str  # its file, relative to the rootdir ("tests/e2e/test_loop.py")
    session_fixtures: frozenset[str]
    heavy: bool  # marked e2e or slow


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, a: str, b: str) -> None:
        first, second = self.find(a), self.find(b)
        if first != second:
            self.parent[max(first, second)] = min(first, second)


def groups(tests: Sequence[Collected]) -> dict[str, str]:
    """Each module's group name: the alphabetically first module of its group."""
    union = _Union()
    for test in tests:
        union.find(test.module)
        for fixture in test.session_fixtures - UNSHARED_SESSION_FIXTURES:
            union.join(test.module, "fixture:" + fixture)
        for directory in ONE_WORKER_DIRECTORIES:
            if test.module.startswith(directory):
                union.join(test.module, "directory:" + directory)
    members: dict[str, list[str]] = defaultdict(list)
    for module in {t.module for t in tests}:
        members[union.find(module)].append(module)
    return {module: min(group) for group in members.values() for module in group}


def heaviest_first(tests: Sequence[Collected], group_of: dict[str, str]) -> list[int]:
    """The tests' indices, whole groups at a time: groups with more heavy modules first (the
    real pipelines), then the rest in collection order; within a group, collection order."""
    heavy_modules: dict[str, set[str]] = defaultdict(set)
    first_seen: dict[str, int] = {}
    for index, test in enumerate(tests):
        group = group_of[test.module]
        first_seen.setdefault(group, index)
        if test.heavy:
            heavy_modules[group].add(test.module)

    def rank(group: str) -> tuple[int, int]:
        return (-len(heavy_modules[group]), first_seen[group])

    order = sorted(first_seen, key=rank)
    position = {group: i for i, group in enumerate(order)}
    return sorted(range(len(tests)), key=lambda i: (position[group_of[tests[i].module]], i))


def session_fixtures(fixture_definitions: Iterable[tuple[str, Sequence]]) -> frozenset[str]:
    """The names among a test's fixtures (name, definitions) whose definition in effect is
    session-scoped."""
    return frozenset(
        name for name, definitions in fixture_definitions
        if definitions and definitions[-1].scope == "session"
    )


def write_groups(path: Path, group_of: dict[str, str]) -> None:
    """Every worker writes the same map; a rename, so the controller never reads half of one."""
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(group_of, sort_keys=True), encoding="utf-8")
    os.replace(partial, path)


def read_groups(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:  # no worker collected: every module is its own group
        return {}


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]
