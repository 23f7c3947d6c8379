"""`beamline serve --rest_api_workers 2`: two real processes on one REST port.

Each request below opens its own connection, so the kernel spreads them over both processes
(SO_REUSEPORT); the probability that 40 connections all land on one of two is 2^-39.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from beamline_serving.workers import METRICS_SECONDS
from tests.serving.support import example_rows, start_server, write_test_model

MODEL = "penguin"


def _worker_of(server) -> tuple[psutil.Process, Path]:
    [worker] = psutil.Process(server.process.pid).children()
    [flag] = [a for a in worker.cmdline() if a.startswith("--rest_worker_state_dir=")]
    return worker, Path(flag.split("=", 1)[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _predict(server) -> dict:
    body = json.dumps({"instances": [example_rows()[0]]}).encode()
    request = urllib.request.Request(f"{server.rest_url}/v1/models/{MODEL}:predict", data=body)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _ok_count(page: str, model: str = MODEL) -> int:
    found = re.search(
        rf':tensorflow:serving:request_count\{{model_name="{model}",status="OK"\}} (\d+)', page
    )
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def model_base(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("workers") / MODEL
    write_test_model(base / "1", 1)
    return base


@pytest.fixture
def two_processes(model_base, tmp_path):
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/metrics" }')
    server = start_server(
        model_name=MODEL, model_base_path=model_base, log_dir=tmp_path,
        args=["--rest_api_workers=2", f"--monitoring_config_file={monitoring}"],
    )
    yield server
    server.stop()


def _merged_ok(server) -> int:
    return _ok_count(_get(f"{server.rest_url}/metrics")[1].decode())


def _published_ok(state: Path, pids, since_ns: int) -> dict[int, int] | None:
    """Each process's OK count as published (every METRICS_SECONDS) after `since_ns`; None
    until every process has published once since then. With no request in flight after
    `since_ns`, a published count is the process's live count."""
    own = {}
    for pid in pids:
        path = state / f"metrics-{pid}.json"
        try:
            if path.stat().st_mtime_ns <= since_ns:
                return None
            points = json.loads(path.read_text())
        except (OSError, ValueError):  # not there yet, or read between a write and its rename
            return None
        counts = points.get("/tensorflow/serving/request_count", [])
        own[pid] = sum(v for (_, status), v in counts if status == "OK")
    return own


def _poll(condition, what: str, timeout: float = 60 + 10 * METRICS_SECONDS):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never true: {what}"
        time.sleep(0.05)
    return value


def test_both_processes_answer_and_the_metrics_page_counts_both(two_processes):
    server = two_processes
    worker, state = _worker_of(server)
    pids = (server.process.pid, worker.pid)
    quiet = time.time_ns()  # no request is sent from here until `before` is known
    before = sum(_poll(lambda: _published_ok(state, pids, quiet), "a publication").values())
    for _ in range(40):
        assert len(_predict(server)["predictions"]) == 1
    answered = time.time_ns()
    own = _poll(lambda: _published_ok(state, pids, answered), "a publication after the 40")
    assert sum(own.values()) == before + 40 and all(own.values()), own  # the kernel used both
    # Published counts are the live ones now, so whichever process answers, adding the
    # other's points to its own, says the same.
    assert {_merged_ok(server) for _ in range(10)} == {before + 40}


def test_a_grpc_config_reload_reaches_the_rest_worker(two_processes, model_base):
    import grpc
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    server = two_processes
    request = model_management_pb2.ReloadConfigRequest()
    twin = request.config.model_config_list.config.add()
    twin.name, twin.base_path, twin.model_platform = "twin", str(model_base), "tensorflow"
    with grpc.insecure_channel(server.grpc_target) as channel:
        reply = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            request, timeout=120
        )
    assert reply.status.error_code == 0
    deadline, agreeing = time.monotonic() + 60, 0
    while time.monotonic() < deadline and agreeing < 20:
        twin_status, _ = _get(f"{server.rest_url}/v1/models/twin")
        old_status, _ = _get(f"{server.rest_url}/v1/models/{MODEL}")
        agreeing = agreeing + 1 if (twin_status, old_status) == (200, 404) else 0
        time.sleep(0.05)
    assert agreeing == 20, "some process still serves the config from before the reload"


def test_stopping_the_server_stops_its_worker_and_removes_the_shared_state(two_processes):
    server = two_processes
    worker, state = _worker_of(server)
    assert state.is_dir()
    assert server.stop() == 0
    worker.wait(timeout=120)  # a hang guard: a loaded machine stops slowly
    assert not state.exists()


def test_workers_run_the_primarys_command_line_with_their_overrides():
    from beamline_serving.errors import ConfigError
    from beamline_serving.workers import SharedState, worker_command

    state = SharedState(Path("/nonexistent"))
    command = worker_command(("/usr/bin/python", "-m", "beamline_serving", "--port=9000"), state)
    assert command == [
        "/usr/bin/python", "-m", "beamline_serving",
        "--port=9000", "--port=0", "--rest_api_workers=1", "--rest_worker_state_dir=/nonexistent",
    ]
    with pytest.raises(ConfigError, match="beamline serve --rest_api_workers"):
        worker_command((), state)  # ServerOptions built in code, by no front door


# A parent that starts a long sleep through the launcher, prints its pid, and waits.
_PARENT = """
import subprocess, sys, time
from beamline_serving.workers import dying_with_this_process
sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
child = subprocess.Popen(dying_with_this_process(sleep))
print(child.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_worker_dies_with_its_primary_even_when_the_primary_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        _poll(lambda: "time.sleep(600)" in " ".join(child.cmdline()), "the launcher to exec")
    finally:
        parent.kill()  # SIGKILL: nothing of the parent's own runs
        parent.wait()
        parent.stdout.close()
    try:
        _poll(lambda: _gone(child.pid), "the orphaned child to get SIGTERM")
    finally:
        if not _gone(child.pid):
            child.kill()


def test_the_launcher_runs_nothing_once_its_parent_is_gone(tmp_path):
    from beamline_serving.workers import dying_with_this_process

    marker = tmp_path / "ran"
    command = dying_with_this_process([sys.executable, "-c", f"open({str(marker)!r}, 'w')"])
    command[command.index(str(os.getpid()))] = "1"  # as if the parent had died and init adopted it
    assert subprocess.run(command, timeout=120).returncode == 1
    assert not marker.exists()
