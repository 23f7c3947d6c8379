"""Jobs of dead runs are canceled only on the Flink clusters this machine names, never on a host
the metadata store names, and never by the read-only `beamline runs` (no Flink needed)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from beamline.cli import cli
from beamline.flink import orphans
from beamline.flink.cluster import ClusterState
from beamline.flink.home import FlinkHome
from beamline.metadata import run_context as rc
from beamline.metadata.connection import sqlite_config
from beamline.settings import RootLayout

JID = "0123456789abcdef0123456789abcdef"


class _FlinkLike(BaseHTTPRequestHandler):
    """Answers like Flink's REST API for one RUNNING job and records every request."""

    def _reply(self, status: int, body: dict) -> None:
        self.server.requests.append((self.command, self.path))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._reply(200, {"jid": JID, "name": "beamline-p-x-Gen", "state": "RUNNING"})

    def do_PATCH(self):  # noqa: N802
        self._reply(202, {})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recording_master():
    """A loopback HTTP server: (its HOST:PORT, the requests it received)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlinkLike)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}", server.requests
    server.shutdown()
    server.server_close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _store_naming(layout: RootLayout, master: str):
    """A store with one run whose runner died mid-node, its Flink job recorded on `master`."""
    store = metadata_store.MetadataStore(sqlite_config(layout.metadata_path))
    pipeline_type = store.put_context_type(pb.ContextType(name=rc.PIPELINE_CONTEXT))
    run_type = store.put_context_type(pb.ContextType(name=rc.RUN_CONTEXT))
    [pipeline_ctx, run_ctx] = store.put_contexts(
        [pb.Context(type_id=pipeline_type, name="p"), pb.Context(type_id=run_type, name="r1")]
    )
    [run] = store.get_contexts_by_id([run_ctx])
    for key, value in {rc.PIPELINE: "p", rc.STATE: rc.RunState.RUNNING,
                       rc.RUNNER_PID: str(_dead_pid()), rc.RUNNER_HOST: socket.gethostname(),
                       rc.HEARTBEAT_MS: "1000"}.items():
        run.custom_properties[key].string_value = value
    store.put_contexts([run])
    exec_type = store.put_execution_type(pb.ExecutionType(name="CsvExampleGen"))
    execution = pb.Execution(type_id=exec_type, last_known_state=pb.Execution.RUNNING)
    execution.custom_properties[rc.FLINK_JOBS].string_value = json.dumps(
        {"master": master, "jobs": [JID]})
    [execution_id] = store.put_executions([execution])
    store.put_attributions_and_associations([], [
        pb.Association(context_id=run_ctx, execution_id=execution_id),
        pb.Association(context_id=pipeline_ctx, execution_id=execution_id),
    ])
    return store


@pytest.fixture
def no_configured_master(tmp_path, monkeypatch):
    monkeypatch.delenv("BEAMLINE_FLINK_MASTER", raising=False)
    monkeypatch.setenv("BEAMLINE_FLINK_HOME", str(tmp_path / "flink-home"))  # no local cluster


def test_a_master_only_the_store_names_gets_no_request(
    tmp_path, recording_master, no_configured_master
):
    master, requests = recording_master
    layout = RootLayout(tmp_path / "root")
    store = _store_naming(layout, master)
    assert orphans.dead_run_jobs(store)  # the store does name a live-looking orphan there
    listed = CliRunner().invoke(cli, ["runs", "--root", str(layout.root)])
    assert listed.exit_code == 0, listed.output
    assert orphans.cancel_orphans(store) == []
    assert requests == []


@pytest.mark.parametrize("named_by", ["environment", "the run's --flink-master"])
def test_a_configured_master_has_the_dead_runs_job_canceled(
    tmp_path, recording_master, no_configured_master, monkeypatch, named_by
):
    master, requests = recording_master
    store = _store_naming(RootLayout(tmp_path / "root"), master)
    if named_by == "environment":
        monkeypatch.setenv("BEAMLINE_FLINK_MASTER", master)
    [canceled] = orphans.cancel_orphans(store, also=[] if named_by == "environment" else [master])
    assert canceled.jid == JID
    assert requests == [("GET", f"/jobs/{JID}"), ("PATCH", f"/jobs/{JID}?mode=cancel")]


def test_the_local_cluster_flink_up_recorded_is_a_known_master(tmp_path):
    home = FlinkHome(tmp_path)
    ClusterState(rest="127.0.0.1:18081", worker_pool="127.0.0.1:15000").save(home)
    assert orphans.known_masters({}, home) == {"http://127.0.0.1:18081"}
    no_cluster = FlinkHome(tmp_path / "none")
    assert orphans.known_masters({"BEAMLINE_FLINK_MASTER": "jm:8081"}, no_cluster) == {
        "http://jm:8081"
    }
