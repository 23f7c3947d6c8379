"""The MLMD schema Beamline's runner writes and its lineage commands read: one owner.

- context types TFX creates (`pipeline`, `pipeline_run`, `node`);
- the custom properties the runner stamps on a `pipeline_run` context (state, liveness, ...);
- node states: MLMD's execution states and the runner's per-node outcomes, and how they map;
- how a run's blessing and push are read from artifact properties;
- the `module_sha256` custom-config key that makes module code part of a node's cache key.

Pure Python (MLMD messages are only duck-typed), so the CLI can import it without TFX.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# The prefix TFX's Kubeflow v2 entry point puts on a custom property that shares a declared
# property's name (tfx.types.artifact.CUSTOM_PROPERTIES_PREFIX).
KFP_CUSTOM_PREFIX = "custom:"

# Context types (TFX's names).
PIPELINE_CONTEXT = "pipeline"
RUN_CONTEXT = "pipeline_run"
NODE_CONTEXT = "node"

# Custom properties of a pipeline_run context. All optional: stock TFX runs have none.
FINGERPRINT = "beamline_fingerprint"  # digest of everything an unchanged re-run shares
PIPELINE = "beamline_pipeline"
STATUS = "beamline_status"  # "succeeded" once the run ended well (what the fast cache replays)
STATE = "beamline_state"  # a RunState
NODES_TOTAL = "beamline_nodes_total"  # number of nodes in the pipeline
END_MS = "beamline_end_ms"  # when the runner finished (ms since epoch, as a string)
REASON = "beamline_reason"  # one line: why a run stopped or failed
# Liveness of a run in progress: which process runs it and when it last said so.
RUNNER_PID = "beamline_runner_pid"
RUNNER_HOST = "beamline_runner_host"
RUNNER_START = "beamline_runner_start"  # the process's start time (guards against pid reuse)
HEARTBEAT_MS = "beamline_heartbeat_ms"  # string, ms since epoch
CURRENT_NODES = "beamline_current_nodes"  # comma-separated nodes running at the last heartbeat
LOG_PATH = "beamline_log"
# On a node's execution, the Flink jobs its Beam pipelines ran as: JSON
# {"master": "HOST:PORT", "jobs": ["<job id>", ...]} (beamline/runner/flink_jobs.py writes it as
# soon as a job appears, so the jobs of a run killed with -9 can still be found and canceled).
FLINK_JOBS = "beamline_flink_jobs"
# What started the run (records.TriggerKind; absent means manual) and, for loop runs, the id of
# the beamline.Trigger execution that decided it (beamline/metadata/records.py).
TRIGGER = "beamline_trigger"
TRIGGER_EXECUTION_ID = "beamline_trigger_execution"
# The experiment a run belongs to (a name) and the settings it was run with other than the
# pipeline's own (a JSON object NAME -> VALUE): `beamline experiments` shows both, and neither
# when they are absent.
EXPERIMENT = "beamline_experiment"
OVERRIDES = "beamline_overrides"
# The data and code versions the run read: keys of manifests in the run root's object store
# (beamline/versions), absent when the run kept none.
DATA_VERSION = "beamline_data_version"
CODE_VERSION = "beamline_code_version"
# The Beam profile the run's Beam jobs ran on, as `auto` resolved it (beamline.beam.PROFILES;
# absent on runs before it was recorded): what `beamline reproduce` runs on again. Its
# --beam-arg flags are not recorded: they may hold endpoints and ${secret:...} values.
BEAM_PROFILE = "beamline_beam_profile"
SUCCEEDED = "succeeded"

# The `module_sha256` custom_config key (components/tabular_pipeline.py sets it, `why` reads it).
MODULE_SHA256_KEY = "module_sha256"
# The custom_config key of the hyperparameters a run fixes (`beamline run --set`) on its Tuner
# and Trainer: they reach the Trainer over the tuned values (`beamline experiments` reads it).
FIXED_HYPERPARAMETERS_KEY = "hyperparameters"
# Examples custom property: rows the ExampleGen left out because their label was missing (the
# CSV ExampleGen of a pipeline with drop_rows_without_label; the run summary reports it).
ROWS_WITHOUT_LABEL_PROPERTY = "rows_without_label"


class RunState:
    """A run's state as `runs`, `report` and `diff` show it."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPED = "stopped"  # anomalies stopped it before training and push
    KILLED = "killed"  # the runner died (kill -9, power loss) without recording an end
    EMPTY = "empty"


class NodeState:
    """How a node ended in a local run (the runner's scheduler and console)."""

    RUNNING = "running"
    COMPLETE = "complete"
    CACHED = "cached"
    RESOLVED = "resolved"  # system nodes (Resolvers) pick artifacts; no executor, no cache
    FAILED = "failed"
    SKIPPED = "skipped"


class ExecutionState:
    """MLMD's Execution.State names, as lineage reads them."""

    NEW = "NEW"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    CACHED = "CACHED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    FINISHED = (COMPLETE, CACHED)
    UNFINISHED = (NEW, RUNNING)


NODE_STATE_OF_EXECUTION = {
    ExecutionState.NEW: NodeState.RUNNING,
    ExecutionState.RUNNING: NodeState.RUNNING,
    ExecutionState.COMPLETE: NodeState.COMPLETE,
    ExecutionState.CACHED: NodeState.CACHED,
    ExecutionState.FAILED: NodeState.FAILED,
    ExecutionState.CANCELED: NodeState.FAILED,
}

# Artifact types and properties that say whether a run blessed and pushed a model.
BLESSING_TYPE = "ModelBlessing"
PUSHED_MODEL_TYPE = "PushedModel"
STATISTICS_TYPE = "ExampleStatistics"


def run_of(store, execution_id: int):
    """The `pipeline_run` context an execution was recorded in, or None."""
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == RUN_CONTEXT:
            return context
    return None


def value_of(value) -> Any:
    """A metadata_store_pb2.Value as plain Python (TFX's JSON-in-struct values decoded)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "struct_value":
        from google.protobuf import json_format

        data = json_format.MessageToDict(value.struct_value)
        if set(data) == {"__value__"} and isinstance(data["__value__"], str):
            try:
                return json.loads(data["__value__"])
            except ValueError:
                return data["__value__"]
        return data
    if kind == "proto_value":
        return f"<proto {value.proto_value.type_url}>"
    return getattr(value, kind)


def properties_of(message) -> dict[str, Any]:
    """An MLMD artifact's, execution's or context's properties and custom properties."""
    props = {k: value_of(v) for k, v in message.properties.items()}
    props.update({k: value_of(v) for k, v in message.custom_properties.items()})
    # TFX's Kubeflow v2 entry point writes a property its artifact type also declares as
    # `custom:NAME` (the Examples' span, in KFP's store and `run --spec`'s): read it as NAME.
    for key in [k for k in props if k.startswith(KFP_CUSTOM_PREFIX)]:
        props.setdefault(key[len(KFP_CUSTOM_PREFIX):], props[key])
    return props


def overrides_from(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A run's overrides (OVERRIDES, stored as a JSON object or decoded from a struct); {} when
    it has none or they are not an object."""
    value = properties.get(OVERRIDES)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def blessed_from(properties: Mapping[str, Any]) -> bool | None:
    """A ModelBlessing's verdict (None when it records none)."""
    value = properties.get("blessed")
    return None if value is None else int(value) == 1


def push_from(properties: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """(version, destination) of a PushedModel that pushed, else None."""
    if properties.get("pushed") != 1:
        return None
    version = properties.get("pushed_version")
    return (str(version) if version is not None else ""), properties.get("pushed_destination")
