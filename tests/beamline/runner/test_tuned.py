"""When a run reuses the last search's hyperparameters (a real SQLite MLMD store, built by
hand as TFX records a Tuner and an ImportSchemaGen in one run)."""

from __future__ import annotations

import json

import pytest

from beamline.metadata import run_context as rc
from beamline.runner.tuned import earlier_search


@pytest.fixture
def searched(tmp_path):
    """A store holding one run whose Tuner searched with module digest "abc"."""
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata.connection import sqlite_config

    store = mlmd.MetadataStore(sqlite_config(tmp_path / "m.sqlite"))
    schema_file = tmp_path / "schema.pbtxt"
    schema_file.write_text('feature { name: "x" type: INT }\n')
    best = tmp_path / "Tuner" / "best_hyperparameters" / "7"
    best.mkdir(parents=True)
    (best / "best_hyperparameters.txt").write_text(json.dumps({"values": {"units": 8}}))
    imported = tmp_path / "ImportSchemaGen" / "schema" / "3"
    imported.mkdir(parents=True)
    (imported / "schema.pbtxt").write_bytes(schema_file.read_bytes())

    run_type = store.put_context_type(pb.ContextType(name=rc.RUN_CONTEXT))
    node_type = store.put_context_type(pb.ContextType(name=rc.NODE_CONTEXT))
    run, tuner_node, schema_node = store.put_contexts([
        pb.Context(type_id=run_type, name="run-1"),
        pb.Context(type_id=node_type, name="penguin.Tuner"),
        pb.Context(type_id=node_type, name="penguin.ImportSchemaGen"),
    ])
    [contexts] = [store.get_contexts_by_id([run, tuner_node, schema_node])]
    hp_type = store.put_artifact_type(pb.ArtifactType(name="HyperParameters"))
    schema_type = store.put_artifact_type(pb.ArtifactType(name="Schema"))
    tuner_type = store.put_execution_type(pb.ExecutionType(name="tfx.Tuner"))
    schema_gen_type = store.put_execution_type(pb.ExecutionType(name="tfx.ImportSchemaGen"))

    def output(key):
        event = pb.Event(type=pb.Event.OUTPUT)
        event.path.steps.add().key = key
        return event

    tuner = pb.Execution(type_id=tuner_type, last_known_state=pb.Execution.COMPLETE)
    tuner.custom_properties["custom_config"].string_value = json.dumps(
        {rc.MODULE_SHA256_KEY: "abc"}
    )
    store.put_execution(
        tuner, [(pb.Artifact(type_id=hp_type, uri=str(best)), output("best_hyperparameters"))],
        [contexts[0], contexts[1]],
    )
    schema_gen = pb.Execution(type_id=schema_gen_type, last_known_state=pb.Execution.COMPLETE)
    store.put_execution(
        schema_gen, [(pb.Artifact(type_id=schema_type, uri=str(imported)), output("schema"))],
        [contexts[0], contexts[2]],
    )
    return store, schema_file, best


def test_an_unchanged_module_and_schema_reuse_the_last_search(searched):
    store, schema_file, best = searched
    reuse = earlier_search(store, "penguin", "abc", str(schema_file))
    assert reuse.uri == str(best)
    assert reuse.why.startswith("reusing the hyperparameters tuned in run run-1")


def test_a_changed_module_schema_or_missing_search_searches_again(searched, tmp_path):
    store, schema_file, best = searched
    changed = earlier_search(store, "penguin", "def", str(schema_file))
    assert changed.uri is None and "model module changed" in changed.why
    schema_file.write_text('feature { name: "y" type: INT }\n')
    assert "schema changed" in earlier_search(store, "penguin", "abc", str(schema_file)).why
    assert earlier_search(store, "taxi", "abc", str(schema_file)).why == (
        "tuning: no earlier search of this pipeline to reuse"
    )
    schema_file.write_bytes((tmp_path / "ImportSchemaGen/schema/3/schema.pbtxt").read_bytes())
    (best / "best_hyperparameters.txt").unlink()
    assert "are gone" in earlier_search(store, "penguin", "abc", str(schema_file)).why
