"""`beamline gc`: --dry-run reports what a real gc then does, and changes nothing; --json."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from beamline.metadata import run_context as rc
from beamline.metadata.connection import sqlite_config
from beamline.runner.run_tmp import run_tmp_dir
from beamline.settings import RootLayout
from tests.beamline.runner.forged_store import forged_root, victims_intact


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def killed_root(tmp_path):
    """A run root whose MLMD holds one run of `p` whose runner died mid-node, plus leftovers."""
    layout = RootLayout(tmp_path)
    store = metadata_store.MetadataStore(sqlite_config(layout.metadata_path))
    pipeline_type = store.put_context_type(pb.ContextType(name=rc.PIPELINE_CONTEXT))
    run_type = store.put_context_type(pb.ContextType(name=rc.RUN_CONTEXT))
    [pipeline_ctx, run_ctx] = store.put_contexts(
        [pb.Context(type_id=pipeline_type, name="p"), pb.Context(type_id=run_type, name="r1")]
    )
    run = store.get_contexts_by_id([run_ctx])[0]
    for key, value in {
        rc.PIPELINE: "p",
        rc.STATE: rc.RunState.RUNNING,
        rc.RUNNER_PID: str(_dead_pid()),
        rc.RUNNER_HOST: socket.gethostname(),
        rc.HEARTBEAT_MS: "1000",
    }.items():
        run.custom_properties[key].string_value = value
    store.put_contexts([run])
    exec_type = store.put_execution_type(pb.ExecutionType(name="Trainer"))
    [execution] = store.put_executions(
        [pb.Execution(type_id=exec_type, last_known_state=pb.Execution.RUNNING)]
    )
    store.put_attributions_and_associations(
        [],
        [pb.Association(context_id=run_ctx, execution_id=execution),
         pb.Association(context_id=pipeline_ctx, execution_id=execution)],
    )
    stale = run_tmp_dir(layout, "p", "r1")
    stale.mkdir(parents=True)
    incoming = layout.serving_dir("p") / ".incoming-17-123"
    incoming.mkdir(parents=True)
    return layout, store, run_ctx, execution, {str(stale), str(incoming)}


def _run_gc(layout, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "gc", "--root", str(layout.root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _gc(layout, *args):
    [entry] = json.loads(_run_gc(layout, "--json", *args).stdout)["pipelines"]
    return entry


def _state(store, run_ctx, execution):
    [ctx] = store.get_contexts_by_id([run_ctx])
    [exe] = store.get_executions_by_id([execution])
    return rc.properties_of(ctx).get(rc.STATE), exe.last_known_state


def test_dry_run_says_what_gc_does_and_changes_nothing(killed_root):
    layout, store, run_ctx, execution, leftovers = killed_root
    planned = _gc(layout, "--dry-run")
    assert planned["dry_run"] is True and planned["pipeline"] == "p"
    assert planned["killed_runs"] == ["r1"]
    assert planned["canceled_executions"] == [execution]
    assert set(planned["removed"]) == leftovers
    assert planned["summary"].startswith("would record 1 killed run(s)")
    assert _state(store, run_ctx, execution) == (rc.RunState.RUNNING, pb.Execution.RUNNING)
    assert all(layout.root.joinpath(p).exists() for p in leftovers)

    done = _gc(layout)
    assert done["dry_run"] is False
    assert {k: done[k] for k in ("killed_runs", "canceled_executions")} == {
        k: planned[k] for k in ("killed_runs", "canceled_executions")
    }
    assert set(done["removed"]) == leftovers
    assert _state(store, run_ctx, execution) == (rc.RunState.KILLED, pb.Execution.CANCELED)
    assert not any(layout.root.joinpath(p).exists() for p in leftovers)
    assert _gc(layout)["summary"] == "nothing to clean"


def test_gc_never_removes_what_a_forged_store_names_outside_the_root(tmp_path):
    forged = forged_root(tmp_path)
    # A pipeline whose recorded name climbs out of the root names no directory at all.
    type_id = forged.store.put_context_type(pb.ContextType(name=rc.PIPELINE_CONTEXT))
    forged.store.put_contexts([pb.Context(type_id=type_id, name="../../outside")])

    listed = json.loads(_run_gc(forged.layout, "--json", "--dry-run").stdout)["pipelines"]
    planned = {entry["pipeline"]: entry for entry in listed}
    assert set(planned) == {"p", "../../outside"}
    assert "skipped" in planned["../../outside"]
    assert set(planned["p"]["removed"]) == {str(p) for p in forged.leftovers}
    assert len(planned["p"]["refused"]) == 4
    assert victims_intact(forged)

    text = _run_gc(forged.layout).stdout
    assert victims_intact(forged)
    assert not any(p.exists() for p in forged.leftovers)
    assert text.count("  refused execution") == 4, text
    assert "../../outside: the name is not one plain file name" in text, text
    assert not (tmp_path / "outside.lock").exists()  # no lock file made outside the root
