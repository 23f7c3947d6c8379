"""What a loop run reused (a real SQLite MLMD store, built by hand as TFX records a Tuner in a
first run and a hyperparameters Importer of its output in a retrain)."""

from __future__ import annotations

import pytest

from beamline.loop.saving import ReusedSearch, describe, reused_search
from beamline.metadata import run_context as rc


@pytest.fixture
def store(tmp_path):
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    return mlmd.MetadataStore(sqlite_config(tmp_path / "m.sqlite"))


def _output(key: str):
    from ml_metadata.proto import metadata_store_pb2 as pb

    event = pb.Event(type=pb.Event.OUTPUT)
    event.path.steps.add().key = key
    return event


def _contexts(store, *names):
    from ml_metadata.proto import metadata_store_pb2 as pb

    run_type = store.put_context_type(pb.ContextType(name=rc.RUN_CONTEXT))
    node_type = store.put_context_type(pb.ContextType(name=rc.NODE_CONTEXT))
    ids = store.put_contexts([
        pb.Context(type_id=run_type if "." not in n else node_type, name=n) for n in names
    ])
    return dict(zip(names, store.get_contexts_by_id(ids), strict=True))


def _input(key: str):
    from ml_metadata.proto import metadata_store_pb2 as pb

    event = pb.Event(type=pb.Event.INPUT)
    event.path.steps.add().key = key
    return event


def _execution(store, type_name, contexts, outputs=()):
    from ml_metadata.proto import metadata_store_pb2 as pb

    type_id = store.put_execution_type(pb.ExecutionType(name=type_name))
    execution = pb.Execution(type_id=type_id, last_known_state=pb.Execution.COMPLETE)
    execution_id, _, _ = store.put_execution(execution, list(outputs), contexts)
    return execution_id


def _seconds(store, execution_id):
    [e] = store.get_executions_by_id([execution_id])
    return (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1e3


def test_a_retrain_that_imported_the_last_search_reports_it_and_its_duration(store):
    from ml_metadata.proto import metadata_store_pb2 as pb

    c = _contexts(store, "first", "retrain", "penguin.Tuner", "penguin.hyperparameters_importer",
                  "penguin.Trainer")
    hp_type = store.put_artifact_type(pb.ArtifactType(name="HyperParameters"))
    best = pb.Artifact(type_id=hp_type, uri="/root/Tuner/best_hyperparameters/6")
    tuner = _execution(store, "tfx.Tuner", [c["first"], c["penguin.Tuner"]],
                       [(best, _output("best_hyperparameters"))])
    [hp] = store.get_artifacts_by_uri(best.uri)
    trained_there = _execution(store, "tfx.Trainer", [c["first"], c["penguin.Trainer"]],
                               [(hp, _input("hyperparameters"))])
    # The Importer re-registers the same artifact (same id) in the retrain's run.
    _execution(store, "tfx.Importer", [c["retrain"], c["penguin.hyperparameters_importer"]],
               [(hp, _output("result"))])
    trained_here = _execution(store, "tfx.Trainer", [c["retrain"], c["penguin.Trainer"]],
                              [(hp, _input("hyperparameters"))])

    reused = reused_search(store, "penguin", "retrain")
    assert (reused.run_id, reused.execution_id) == ("first", tuner)
    assert reused.seconds == _seconds(store, tuner)
    assert reused.trained_there == _seconds(store, trained_there)
    assert reused.trained_here == _seconds(store, trained_here)
    assert reused_search(store, "penguin", "first") is None  # it searched itself
    assert reused_search(store, "penguin", "no-such-run") is None


def test_the_saving_is_the_search_and_its_training_less_this_runs_training():
    reused = ReusedSearch("first", 6, seconds=26.6, trained_there=12.3, trained_here=30.8)
    assert round(reused.saved, 1) == 8.1
    assert describe(reused, "retrain", 61.25) == (
        "run retrain took 61.2 s; hyperparameters reused from run first (Tuner execution #6): "
        "its 26.6 s search was skipped; training took 30.8 s here against 12.3 s there (the "
        "first model a process trains pays TensorFlow's one-time costs, which the search paid "
        "there), so reusing saved 8.1 s"
    )
    # A busier machine during the retrain: its training outlasts the search it skipped.
    slower = ReusedSearch("first", 6, seconds=15.6, trained_there=21.6, trained_here=53.9)
    assert describe(slower, "retrain", 334.0) == (
        "run retrain took 334.0 s; hyperparameters reused from run first (Tuner execution #6): "
        "its 15.6 s search was skipped, but training took 53.9 s here against 21.6 s there (the "
        "first model a process trains pays TensorFlow's one-time costs, which the search paid "
        "there), so reusing saved no time in this run"
    )
    assert describe(None, "first", 84.4) == "run first took 84.4 s"


def test_a_run_without_any_search_reused_nothing(store):
    c = _contexts(store, "only", "penguin.Trainer")
    _execution(store, "tfx.Trainer", [c["only"], c["penguin.Trainer"]])
    assert reused_search(store, "penguin", "only") is None
