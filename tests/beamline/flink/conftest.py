"""A real local Flink cluster for the session (`beamline flink up`), penguin and taxi runs on it
and a DirectRunner run of the same data for each to compare with (taxi's is the session's
`taxi_run_started`, tests/conftest.py).

The penguin Flink run is a re-run: the first penguin run in its root has its TaskManager killed
(by the recorded pid) while a task of CsvExampleGen's Flink job runs on it, and fails;
`beamline flink up` starts a new TaskManager; the re-run in the same root then goes through
Pusher. Nothing of the failed run is cached (its first Beam node failed), so the re-run submits
every Beam node's job.

The cluster uses the Flink cache (`make flink-fetch`, a dependency of `make test`, fills it
once; `flink up` fetches whatever is missing). The session owns the cluster: it refuses to
start while another local cluster is up, and `test_cluster.py` ends with `flink down`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from beamline.flink.cluster import ClusterState, local_cluster
from beamline.flink.home import FlinkHome
from beamline.flink.rest import FlinkRest
from tests.e2e.conftest import CliRun, Started, beamline, started


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
    pipeline: str = "penguin"

    def store(self):
        import ml_metadata as mlmd

        from beamline.metadata.connection import sqlite_config

        return mlmd.MetadataStore(sqlite_config(self.root / "metadata.sqlite"))


@pytest.fixture(scope="session")
def direct_started(tmp_path_factory) -> Iterator[Started]:
    """The DirectRunner run of the shipped data, started alongside the Flink run it is compared
    with: on two cores a Flink run spends most of its time waiting for jar uploads and worker
    start-ups."""
    root = tmp_path_factory.mktemp("penguin_direct_root")
    with started(root, "run", "penguin", "--no-tune", "--beam", "direct") as run:
        yield run


@pytest.fixture(scope="session")
def taxi_flink_run(flink_cluster, taxi_run_started, tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("taxi_flink_root")
    cli = beamline("run", "taxi", "--no-tune", "--beam", "flink", "--root", str(root),
                   timeout=3600)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    return Run(root, cli, "taxi")


@pytest.fixture(scope="session")
def taxi_direct_run(taxi_run_started) -> Run:
    """The session's taxi run (tests/conftest.py), also read by tests/e2e/test_taxi_pipeline.py:
    the default profile, the in-memory DirectRunner at this size (the taxi test checks)."""
    return Run(taxi_run_started.root, taxi_run_started.result(), "taxi")


@dataclass
class TaskManagerKilled:
    root: Path
    run: CliRun  # the run whose TaskManager was killed
    jid: str  # its CsvExampleGen job, RUNNING when the TaskManager was killed
    killed_pid: int
    up: CliRun  # `beamline flink up` after the run ended
    killed_ids: set[str]  # the TaskManagers registered when the kill came
    after_up: dict[str, int]  # the TaskManagers registered (id -> slots) as `up` returned


def poll(what: str, condition, timeout: float = 120.0, every: float = 1.0):
    """`condition()`'s first truthy value, asked every `every` s for at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def running_tasks(rest: FlinkRest, jid: str) -> int:
    """How many subtasks of job `jid` run on a TaskManager. Flink calls a job RUNNING once it is
    scheduled, before any task is deployed; a TaskManager killed then takes no task with it, and
    the job waits for a slot until Flink's slot.request.timeout (5 minutes) fails it."""
    with urllib.request.urlopen(f"{rest.url}/jobs/{jid}", timeout=rest.timeout) as response:
        vertices = json.load(response).get("vertices", [])
    return sum(int(v.get("tasks", {}).get("RUNNING", 0)) for v in vertices)


@pytest.fixture(scope="session")
def taskmanager_killed(flink_cluster, direct_started, tmp_path_factory) -> TaskManagerKilled:
    """Penguin on Flink with the TaskManager killed -9 while a task of CsvExampleGen's job runs
    on it."""
    root = tmp_path_factory.mktemp("flink_root")
    rest = FlinkRest(flink_cluster.state.rest)
    before = {j.jid for j in rest.jobs()}
    args = ["run", "penguin", "--no-tune", "--beam", "flink", "--root", str(root)]
    proc = subprocess.Popen([sys.executable, "-m", "beamline", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    taskmanager = flink_cluster.state.parts["taskmanager"]
    try:
        def running_example_gen() -> str | None:
            for job in rest.jobs():
                if (job.jid not in before and job.state == "RUNNING"
                        and job.name.startswith("beamline-penguin-")
                        and job.name.endswith("-CsvExampleGen")
                        and running_tasks(rest, job.jid)):
                    return job.jid
            assert proc.poll() is None, "the run ended before its CsvExampleGen job ran"
            return None

        jid = poll("a task of CsvExampleGen's Flink job RUNNING", running_example_gen, timeout=900,
                   every=0.5)
        killed_ids = set(rest.taskmanagers())
        os.kill(taskmanager.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    run = CliRun(args, proc.returncode, out, err)
    up = beamline("flink", "up", timeout=600)
    return TaskManagerKilled(root, run, jid, taskmanager.pid, up, killed_ids, rest.taskmanagers())


@pytest.fixture(scope="session")
def flink_run(taskmanager_killed) -> Run:
    """The re-run, after `flink up` replaced the killed TaskManager."""
    assert taskmanager_killed.up.returncode == 0, (
        taskmanager_killed.up.stdout + taskmanager_killed.up.stderr)
    root = taskmanager_killed.root
    cli = beamline("run", "penguin", "--no-tune", "--beam", "flink", "--root", str(root))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    return Run(root, cli)


@pytest.fixture(scope="session")
def direct_run(direct_started) -> Run:
    return Run(direct_started.root, direct_started.result())
