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


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups off the markers
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if _split_over_workers(config):
        _group_for_workers(items)


def _split_over_workers(config) -> bool:
    """`make test` runs pytest-xdist workers with `--dist loadgroup` (tests/worker_groups.py)."""
    try:
        return config.getoption("dist") == "loadgroup"
    except ValueError:  # pytest-xdist not loaded (`-p no:xdist`)
        return False


def _group_for_workers(items) -> None:
    from tests import worker_groups

    collected = [
        worker_groups.Collected(
            module=item.nodeid.split("::")[0],
            session_fixtures=worker_groups.session_fixtures(
                item._fixtureinfo.name2fixturedefs.items()
            ) if hasattr(item, "_fixtureinfo") else frozenset(),
            heavy=bool(item.get_closest_marker("e2e") or item.get_closest_marker("slow")),
        )
        for item in items
    ]
    group_of = worker_groups.groups(collected)
    for item, test in zip(items, collected, strict=True):
        item.add_marker(pytest.mark.xdist_group(group_of[test.module]))
    items[:] = [items[i] for i in worker_groups.heaviest_first(collected, group_of)]


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
