"""Recurring retrains reuse the last tuned hyperparameters instead of searching again.

A Tuner search costs more than the training it feeds, and a retrain on a new span of the same
data rarely needs a new one. The last search of the pipeline (its Tuner execution in MLMD, its
`best_hyperparameters` directory on disk) is reused when the model module is the one it searched
with (the `module_sha256` in the Tuner's custom_config) and the schema is the one its run
imported; `--tune` asks for a new search. Reuse goes through TFX: an Importer of that directory
feeds the Trainer's `hyperparameters` input (beamline_components.tabular_pipeline), so the
lineage shows where the hyperparameters came from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from beamline.metadata import run_context as rc

TUNER_NODE = "Tuner"
SCHEMA_NODE = "ImportSchemaGen"


@dataclass(frozen=True)
class Reuse:
    uri: str | None  # the best_hyperparameters directory to import; None: search again
    why: str  # one line for the console


def _custom_config(value) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def module_sha_of(pipeline) -> str | None:
    """The module digest the pipeline's Tuner node would search with (None: no Tuner)."""
    for node in pipeline.components:
        if node.id == TUNER_NODE:
            return _custom_config(node.exec_properties.get("custom_config")).get(
                rc.MODULE_SHA256_KEY
            )
    return None


def _outputs(store, execution_id: int, key: str) -> list:
    from ml_metadata.proto import metadata_store_pb2 as pb

    ids = [
        e.artifact_id
        for e in store.get_events_by_execution_ids([execution_id])
        if e.type == pb.Event.OUTPUT and e.path.steps and e.path.steps[0].key == key
    ]
    return store.get_artifacts_by_id(ids) if ids else []


def _schema_in_run(store, pipeline: str, run_context) -> bytes | None:
    node = store.get_context_by_type_and_name(rc.NODE_CONTEXT, f"{pipeline}.{SCHEMA_NODE}")
    if node is None or run_context is None:
        return None
    in_run = {e.id for e in store.get_executions_by_context(run_context.id)}
    for execution in store.get_executions_by_context(node.id):
        if execution.id in in_run:
            for artifact in _outputs(store, execution.id, "schema"):
                path = Path(artifact.uri) / "schema.pbtxt"
                if path.is_file():
                    return path.read_bytes()
    return None


def earlier_search(store, pipeline: str, module_sha: str | None, schema_path: str) -> Reuse:
    """Whether the last search of `pipeline` can stand in for a new one, and why (not)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    node = store.get_context_by_type_and_name(rc.NODE_CONTEXT, f"{pipeline}.{TUNER_NODE}")
    finished = (pb.Execution.COMPLETE, pb.Execution.CACHED)
    executions = [
        e for e in (store.get_executions_by_context(node.id) if node is not None else [])
        if e.last_known_state in finished
    ]
    if not executions:
        return Reuse(None, "tuning: no earlier search of this pipeline to reuse")
    latest = max(executions, key=lambda e: e.id)
    run = rc.run_of(store, latest.id)
    where = f"run {run.name}" if run is not None else f"execution #{latest.id}"
    searched_with = _custom_config(rc.properties_of(latest).get("custom_config")).get(
        rc.MODULE_SHA256_KEY
    )
    if not module_sha or searched_with != module_sha:
        return Reuse(None, f"tuning: the model module changed since the search in {where}")
    current = (
        Path(schema_path).read_bytes() if schema_path and os.path.isfile(schema_path) else None
    )
    if current is None or _schema_in_run(store, pipeline, run) != current:
        return Reuse(None, f"tuning: the schema changed since the search in {where}")
    found = [
        a for a in _outputs(store, latest.id, "best_hyperparameters")
        if os.path.isdir(a.uri) and len(os.listdir(a.uri)) == 1
    ]
    if not found:
        return Reuse(None, f"tuning: the hyperparameters the search in {where} found are gone")
    return Reuse(
        found[0].uri,
        f"reusing the hyperparameters tuned in {where} (model module and schema unchanged; "
        "--tune searches again)",
    )
