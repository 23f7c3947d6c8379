"""Run ids are claimed in the store: two runners starting in the same microsecond never share one.

CI once started two `beamline run penguin` processes against one MariaDB store that both took
run id 2026-11-26T18:29:01.078862; every node of both runs then resolved two artifacts.
"""

from __future__ import annotations

import datetime
import os

import pytest

from beamline.errors import ConfigError
from beamline.metadata import run_context as rc
from beamline.metadata.connection import connection_config, open_store
from beamline.metadata.run_claim import claim_run_id

FROZEN = datetime.datetime(2026, 11, 26, 18, 29, 1, 78862)


def frozen() -> datetime.datetime:
    return FROZEN


@pytest.fixture
def store(tmp_path):
    return open_store(connection_config(None, tmp_path / "metadata.sqlite"))


def test_runners_starting_in_the_same_microsecond_get_distinct_ids(store):
    first = claim_run_id(store, "penguin", now=frozen)
    second = claim_run_id(store, "penguin", now=frozen)
    third = claim_run_id(store, "taxi", now=frozen)
    assert first == "2026-11-26T18:29:01.078862"
    assert second == "2026-11-26T18:29:01.078863"
    assert third == "2026-11-26T18:29:01.078864"
    names = [c.name for c in store.get_contexts_by_type(rc.RUN_CONTEXT)]
    assert sorted(names) == [first, second, third]


def test_a_claimed_run_is_owned_running_and_linked_to_its_pipeline(store):
    run_id = claim_run_id(store, "penguin", now=frozen)
    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    props = rc.properties_of(ctx)
    assert props[rc.RUNNER_PID] == os.getpid()
    assert props[rc.STATE] == rc.RunState.RUNNING
    assert props[rc.PIPELINE] == "penguin"
    assert int(props[rc.HEARTBEAT_MS]) > 0
    [parent] = store.get_parent_contexts_by_context(ctx.id)
    assert (parent.type, parent.name) == (rc.PIPELINE_CONTEXT, "penguin")
    # A second run of the same pipeline reuses the pipeline's context.
    other = claim_run_id(store, "penguin")
    other_ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, other)
    assert [p.id for p in store.get_parent_contexts_by_context(other_ctx.id)] == [parent.id]


def test_a_requested_id_that_is_taken_is_a_clear_error(store):
    assert claim_run_id(store, "penguin", requested="nightly-1") == "nightly-1"
    with pytest.raises(ConfigError, match="'nightly-1' is already taken"):
        claim_run_id(store, "penguin", requested="nightly-1")


def test_tfx_adopts_the_claimed_context(store, tmp_path):
    """TFX's launcher finds the claimed run context instead of making a second one."""
    from tfx.orchestration import metadata
    from tfx.orchestration.portable.mlmd import context_lib
    from tfx.proto.orchestration import pipeline_pb2

    run_id = claim_run_id(store, "penguin", now=frozen)
    contexts = pipeline_pb2.NodeContexts()
    for type_name, name in (
        (rc.PIPELINE_CONTEXT, "penguin"),
        (rc.RUN_CONTEXT, run_id),
        (rc.NODE_CONTEXT, "penguin.CsvExampleGen"),
    ):
        spec = contexts.contexts.add()
        spec.type.name = type_name
        spec.name.field_value.string_value = name
    config = connection_config(None, tmp_path / "metadata.sqlite")
    with metadata.Metadata(config) as handle:
        made = context_lib.prepare_contexts(handle, contexts)
    run_ctx = next(c for c in made if c.type == rc.RUN_CONTEXT)
    assert run_ctx.id == store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id).id
    assert len(store.get_contexts_by_type(rc.RUN_CONTEXT)) == 1


def test_a_run_records_its_experiment_and_overrides_for_beamline_experiments(store):
    run_id = claim_run_id(store, "penguin", now=frozen, experiment="lr",
                          overrides={"learning_rate": 0.03, "units": 8})
    plain = claim_run_id(store, "penguin", now=frozen)
    props = rc.properties_of(store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id))
    assert props[rc.EXPERIMENT] == "lr"
    assert rc.overrides_from(props) == {"learning_rate": 0.03, "units": 8}
    props = rc.properties_of(store.get_context_by_type_and_name(rc.RUN_CONTEXT, plain))
    assert rc.EXPERIMENT not in props and rc.overrides_from(props) == {}
