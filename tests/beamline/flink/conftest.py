"""A real local Flink cluster for the session (`beamline flink up`), one penguin run on it and
one DirectRunner run of the same data to compare with.

The cluster uses the Flink cache (`make flink-fetch`, a dependency of `make test`, fills it
once; `flink up` fetches whatever is missing). The session owns the cluster: it refuses to
start while another local cluster is up, and `test_cluster.py` ends with `flink down`.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from beamline.flink.cluster import ClusterState, local_cluster
from beamline.flink.home import FlinkHome
from tests.e2e.conftest import CliRun, beamline


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: minutes-long end-to-end runs (deselect with -m 'not slow')"
    )


@dataclass
class Cluster:
    home: FlinkHome
    up: CliRun

    @property
    def state(self) -> ClusterState:
        state = ClusterState.load(self.home)
        assert state is not None, "the cluster's state file is gone"
        return state


@pytest.fixture(scope="session")
def flink_cluster() -> Cluster:
    home = FlinkHome.default()
    assert local_cluster(home) is None, (
        f"a local Flink cluster is already up ({home.state_file}); these tests start and stop "
        "their own: run `beamline flink down` first"
    )
    up = beamline("flink", "up", timeout=3600)
    assert up.returncode == 0, up.stdout + up.stderr
    yield Cluster(home, up)
    if local_cluster(home) is not None:  # a failed test left it up
        beamline("flink", "down")


@dataclass
class Run:
    root: Path
    cli: CliRun

    def store(self):
        import ml_metadata as mlmd

        from beamline.metadata.connection import sqlite_config

        return mlmd.MetadataStore(sqlite_config(self.root / "metadata.sqlite"))


@dataclass
class Started:
    """A `beamline run` started in the background (its result is read when a test needs it)."""

    root: Path
    args: list[str]
    proc: subprocess.Popen

    def result(self) -> Run:
        out, err = self.proc.communicate(timeout=3600)
        cli = CliRun(self.args, self.proc.returncode, out, err)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        return Run(self.root, cli)


@pytest.fixture(scope="session")
def direct_started(tmp_path_factory) -> Started:
    """The DirectRunner run of the same data, started alongside the Flink run: on two cores a
    Flink run spends most of its time waiting for jar uploads and worker start-ups."""
    root = tmp_path_factory.mktemp("direct_root")
    args = ["run", "penguin", "--no-tune", "--beam", "direct", "--root", str(root)]
    proc = subprocess.Popen([sys.executable, "-m", "beamline", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    yield Started(root, args, proc)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def flink_run(flink_cluster, direct_started, tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("flink_root")
    cli = beamline("run", "penguin", "--no-tune", "--beam", "flink", "--root", str(root))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    return Run(root, cli)


@pytest.fixture(scope="session")
def direct_run(direct_started) -> Run:
    return direct_started.result()
