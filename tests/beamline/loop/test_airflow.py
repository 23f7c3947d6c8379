"""The loop DAG's records in a real SQLite MLMD store: the run context `loop_decide` claims is the
one TFX's legacy launcher (Airflow) then uses, and `beamline runs` reads the trigger from it; a
decision whose DAG run never concluded is settled from what the run recorded."""

from __future__ import annotations

import io

import pytest

from beamline.lineage.load import load_graph
from beamline.lineage.orchestrators import legacy_runs
from beamline.lineage.runs import summarize
from beamline.loop import airflow as loop_airflow
from beamline.loop import triggers as tr
from beamline.loop.step import LoopRequest
from beamline.metadata import records as rec
from beamline.metadata import run_context as rc

DAG_RUN = "manual__2026-12-02T03:00:00+00:00"
RUN_ID = f"penguin.{DAG_RUN}"


@pytest.fixture
def sqlite_path(tmp_path):
    return tmp_path / "metadata.sqlite"


@pytest.fixture
def store(sqlite_path):
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    return mlmd.MetadataStore(sqlite_config(sqlite_path))


def _decide(store, until: int = 200) -> tr.TriggerRecord:
    trigger_id = tr.record_decision(
        store, "penguin", kind=rec.TriggerKind.DRIFT, decision=rec.Decision.RETRAIN,
        reason="body_mass_g JSD 0.41 > 0.10", since=100, until=until,
        monitoring_result_id=None, monitor_execution_id=7, run_id=RUN_ID, span=2,
    )  # fmt: skip
    return tr.trigger_by_id(store, trigger_id)


def test_tfx_reuses_the_claimed_run_context_and_runs_read_the_trigger(store, sqlite_path):
    from tfx.orchestration import data_types, metadata

    from beamline.metadata.connection import sqlite_config

    trigger = _decide(store)
    loop_airflow.claim_run(store, "penguin", DAG_RUN, trigger)
    claimed = store.get_context_by_type_and_name("run", RUN_ID)
    # What TFX's legacy launcher does when an Airflow task of this DAG run starts.
    info = data_types.PipelineInfo(pipeline_name="penguin", pipeline_root="/p", run_id=DAG_RUN)
    with metadata.Metadata(sqlite_config(sqlite_path)) as m:
        contexts = m.register_pipeline_contexts_if_not_exists(info)
    assert claimed.id in {c.id for c in contexts}
    [run] = [f.run for f in legacy_runs(store, "penguin")]
    assert run.id == RUN_ID
    assert run.properties[rc.TRIGGER] == rec.TriggerKind.DRIFT
    assert run.properties[rc.TRIGGER_EXECUTION_ID] == trigger.execution_id
    # The trigger is associated with the run but is not one of its nodes.
    assert trigger.execution_id in {e.id for e in store.get_executions_by_context(claimed.id)}
    graph = load_graph(store, "penguin")
    summary = summarize(graph, graph.runs[RUN_ID])
    assert summary.trigger == rec.TriggerKind.DRIFT and summary.executed == 0


def test_a_decision_its_dag_run_never_concluded_is_settled_failed_from_the_record(
    store, tmp_path
):
    trigger = _decide(store)
    loop_airflow.claim_run(store, "penguin", DAG_RUN, trigger)
    config = LoopRequest("penguin", tmp_path, tmp_path, tmp_path)
    out = io.StringIO()
    loop_airflow.settle(config, store, trigger, out)
    [done] = tr.triggers(store, "penguin")
    assert done.state == "FAILED" and not done.pending
    assert done.outcome == f"run {RUN_ID} failed: no pipeline task recorded anything"
    assert "was never concluded" in out.getvalue()
    graph = load_graph(store, "penguin")
    summary = summarize(graph, graph.runs[RUN_ID])
    assert summary.state == rc.RunState.FAILED
    assert summary.reason == "no pipeline task recorded anything"


def test_failed_airflow_tasks_fail_the_trigger_and_name_the_tasks(store, tmp_path):
    trigger = _decide(store)
    loop_airflow.claim_run(store, "penguin", DAG_RUN, trigger)
    config = LoopRequest("penguin", tmp_path, tmp_path, tmp_path)
    result = loop_airflow.finish_run(config, store, trigger, ["Trainer", "Pusher"], io.StringIO())
    assert result.exit_code == 1
    [done] = tr.triggers(store, "penguin")
    assert done.state == "FAILED"
    assert done.outcome == f"run {RUN_ID} failed: Airflow task(s) Trainer, Pusher failed"
