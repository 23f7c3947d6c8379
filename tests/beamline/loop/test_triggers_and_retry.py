"""Trigger records in a real SQLite MLMD store, transient-error retries, durations."""

from __future__ import annotations

import io

import pytest

from beamline.errors import ConfigError, DataError, MetadataUnreachable
from beamline.loop import triggers as tr
from beamline.loop.loop import parse_duration
from beamline.loop.retry import transient, with_retries
from beamline.metadata import records as rec
from beamline.metadata import run_context as rc


@pytest.fixture
def store(tmp_path):
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    return mlmd.MetadataStore(sqlite_config(tmp_path / "m.sqlite"))


def _result_artifact(store) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    type_id = store.put_artifact_type(pb.ArtifactType(name="MonitoringResult"))
    [aid] = store.put_artifacts([pb.Artifact(type_id=type_id, uri="/m/result.json")])
    return aid


def test_a_window_is_decided_once_and_its_run_is_linked(store):
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.proto import metadata_store_pb2 as pb

    result = _result_artifact(store)
    decide = dict(
        kind=rec.TriggerKind.DRIFT, decision=rec.Decision.RETRAIN, reason="mass JSD 0.4 > 0.1",
        since=100, until=200, monitoring_result_id=result, monitor_execution_id=7,
        run_id="run-1", span=2,
    )
    trigger_id = tr.record_decision(store, "penguin", **decide)
    with pytest.raises(mlmd_errors.AlreadyExistsError):
        tr.record_decision(store, "penguin", **decide)
    [pending] = tr.triggers(store, "penguin")
    assert pending.pending and pending.run_id == "run-1" and pending.span == 2
    assert pending.monitor_execution_id == 7
    [event] = store.get_events_by_execution_ids([trigger_id])
    assert event.artifact_id == result and event.type == pb.Event.INPUT
    assert event.path.steps[0].key == rec.TRIGGER_INPUT_KEY

    run_type = store.put_context_type(pb.ContextType(name=rc.RUN_CONTEXT))
    [run_ctx] = store.put_contexts([pb.Context(type_id=run_type, name="run-1")])
    tr.link_run(store, trigger_id, "run-1")
    assert trigger_id in {e.id for e in store.get_executions_by_context(run_ctx)}
    tr.finish(store, trigger_id, "pushed version 5")
    [done] = tr.triggers(store, "penguin")
    assert not done.pending and done.state == "COMPLETE" and done.outcome == "pushed version 5"

    nothing = tr.record_decision(
        store, "penguin", kind="", decision=rec.Decision.NOTHING, reason="no drift",
        since=200, until=300, monitoring_result_id=None, monitor_execution_id=None,
        canary_review="canary version 4 is worse than stable version 3 in this window",
    )
    assert [t.execution_id for t in tr.triggers(store, "penguin")] == [trigger_id, nothing]
    assert tr.triggers(store, "penguin")[1].state == "COMPLETE"
    assert tr.triggers(store, "penguin")[1].canary_review.startswith("canary version 4 is worse")
    assert tr.triggers(store, "penguin")[0].canary_review == ""
    assert tr.triggers(store, "taxi") == []


def test_transient_errors_are_named_and_retried_with_backoff():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise MetadataUnreachable("mysql://db:3306 refused the connection")
        return "done"

    out = io.StringIO()
    assert with_retries(flaky, "step", out, sleep=slept.append) == "done"
    assert slept == [1.0, 2.0]
    assert "transient error (metadata store unreachable" in out.getvalue()
    assert "retry 1/4 in 1 s" in out.getvalue()

    def broken():
        raise DataError("bad data")

    with pytest.raises(DataError):
        with_retries(broken, "step", out, sleep=slept.append)
    assert slept == [1.0, 2.0]  # not retried
    import sqlite3

    assert transient(sqlite3.OperationalError("database is locked")) == "metadata store busy"
    assert transient(ValueError("database is locked")) is None


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900
    assert parse_duration("6h") == 6 * 3600 and parse_duration("1d") == 86400
    assert parse_duration("30") == 30
    for bad in ("", "0s", "soon", "5w"):
        with pytest.raises(ConfigError, match="not a duration"):
            parse_duration(bad)
