"""Shared test set-up: the project's TensorFlow environment before anything imports TF, the
Hypothesis profiles, and fixtures every area uses.

Hypothesis: the `ci` profile (the default) is derandomized, so a run is reproducible, and prints
the failing example's seed and the `@reproduce_failure` blob; `HYPOTHESIS_PROFILE=dev` explores
with random seeds and ten times the examples (docs/guides/testing.md).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from beamline.settings import apply_tf_environment

apply_tf_environment()

HYPOTHESIS_PROFILE_ENV = "HYPOTHESIS_PROFILE"
# Tests that set their own max_examples ask tests/hypothesis_budget.py, which multiplies them
# under `dev`; the others get the profile's max_examples.
settings.register_profile(
    "ci",
    derandomize=True,
    print_blob=True,
    deadline=None,  # a busy machine is not a failure; speed lives in benchmarks/
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    derandomize=False,
    print_blob=True,
    deadline=None,
    max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get(HYPOTHESIS_PROFILE_ENV, "ci"))


# Speed tiers (markers registered in pyproject.toml; `make test-fast` deselects both):
# - e2e: everything under tests/e2e (real pipelines through the CLI, servers over their pushes);
# - slow: elsewhere, tests that run a real TFX pipeline: those using one of these fixtures, and
#   modules that mark themselves (pytestmark = pytest.mark.slow).
E2E_DIR = Path(__file__).resolve().parent / "e2e"
SLOW_FIXTURES = frozenset(
    {"tiny_store", "chaos", "push_chaos", "penguin_run", "taxi_run_started"}
)


def pytest_configure(config) -> None:
    # In the controller of `make test`'s workers (tests/worker_groups.py): where the workers
    # leave their module-to-group map, set before xdist starts them so they inherit it.
    if _splits_over_workers(config) and not hasattr(config, "workerinput"):
        import tempfile

        from tests.worker_groups import GROUPS_FILE_ENV

        directory = Path(tempfile.mkdtemp(prefix="beamline-test-groups-"))
        os.environ[GROUPS_FILE_ENV] = str(directory / "groups.json")


def pytest_unconfigure(config) -> None:
    from tests.worker_groups import GROUPS_FILE_ENV

    if _splits_over_workers(config) and not hasattr(config, "workerinput"):
        import shutil

        shutil.rmtree(Path(os.environ.pop(GROUPS_FILE_ENV)).parent, ignore_errors=True)


def _splits_over_workers(config) -> bool:
    try:
        return bool(config.getoption("numprocesses")) and config.getoption("dist") == "loadscope"
    except ValueError:  # pytest-xdist not loaded (`-p no:xdist`)
        return False


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    from tests.worker_groups import GROUPS_FILE_ENV

    if hasattr(config, "workerinput") and os.environ.get(GROUPS_FILE_ENV):
        _group_for_workers(items, Path(os.environ[GROUPS_FILE_ENV]))


def _group_for_workers(items, groups_file: Path) -> None:
    from tests import worker_groups

    collected = [
        worker_groups.Collected(
            module=worker_groups.module_of(item.nodeid),
            session_fixtures=worker_groups.session_fixtures(
                item._fixtureinfo.name2fixturedefs.items()
            ) if hasattr(item, "_fixtureinfo") else frozenset(),
            heavy=bool(item.get_closest_marker("e2e") or item.get_closest_marker("slow")),
        )
        for item in items
    ]
    group_of = worker_groups.groups(collected)
    items[:] = [items[i] for i in worker_groups.heaviest_first(collected, group_of)]
    worker_groups.write_groups(groups_file, group_of)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if not _splits_over_workers(config):
        return None
    from tests.worker_scheduling import GroupScheduling

    return GroupScheduling(config, log)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test: bound (so no other process
    can take it meanwhile) but never listening, so a connect gets ECONNREFUSED at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def taxi_run_started(tmp_path_factory):
    """`beamline run taxi --no-tune` of the shipped trips with the default profile (`auto`: the
    in-memory DirectRunner at this size), started in the background when first asked for and
    shared read-only by the session: tests/e2e/test_taxi_pipeline.py reads its records and serves
    its push; the Flink module compares its taxi-on-Flink run with it, started alongside."""
    from tests.e2e.conftest import started

    with started(tmp_path_factory.mktemp("taxi_root"), "run", "taxi", "--no-tune") as run:
        yield run
