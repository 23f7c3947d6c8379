"""Plain-data view of an ML Metadata store: runs, executions, artifacts and the events linking them.

`beamline.lineage.load` fills a `Graph` from MLMD once; every query in `beamline.lineage` is a
pure function over it (so tests can build graphs by hand). Times are milliseconds since the epoch
as MLMD records them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beamline.metadata.run_context import ExecutionState

# Execution states as MLMD names them (metadata_store_pb2.Execution.State).
COMPLETE = ExecutionState.COMPLETE
CACHED = ExecutionState.CACHED
FAILED = ExecutionState.FAILED
RUNNING = ExecutionState.RUNNING
NEW = ExecutionState.NEW
CANCELED = ExecutionState.CANCELED
FINISHED_STATES = ExecutionState.FINISHED


@dataclass
class Artifact:
    id: int
    type: str
    uri: str
    state: str = "LIVE"
    properties: dict[str, Any] = field(default_factory=dict)
    create_ms: int = 0

    def prop(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)


@dataclass
class Execution:
    id: int
    type: str  # full type name, e.g. tfx.components.trainer.component.Trainer
    node_id: str  # the pipeline node id, e.g. Trainer (or a custom id)
    pipeline: str
    run_id: str
    state: str
    start_ms: int
    end_ms: int
    properties: dict[str, Any] = field(default_factory=dict)
    # key -> artifact ids, in event path order
    inputs: dict[str, list[int]] = field(default_factory=dict)
    outputs: dict[str, list[int]] = field(default_factory=dict)

    @property
    def component(self) -> str:
        """The component class name (last part of the type name)."""
        return self.type.rsplit(".", 1)[-1]

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ms - self.start_ms) / 1000.0

    def input_ids(self) -> list[int]:
        return [a for ids in self.inputs.values() for a in ids]

    def output_ids(self) -> list[int]:
        return [a for ids in self.outputs.values() for a in ids]

    def prop(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)


@dataclass
class Run:
    id: str  # the pipeline_run context name (TFX run id)
    pipeline: str
    create_ms: int
    execution_ids: list[int] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """Everything loaded for one or more pipelines."""

    runs: dict[str, Run] = field(default_factory=dict)
    executions: dict[int, Execution] = field(default_factory=dict)
    artifacts: dict[int, Artifact] = field(default_factory=dict)
    source: str = ""  # log-safe description of the store

    # ---- indexes (built lazily) ----
    _producers: dict[int, list[int]] | None = None
    _consumers: dict[int, list[int]] | None = None

    def _index(self) -> None:
        producers: dict[int, list[int]] = {}
        consumers: dict[int, list[int]] = {}
        for ex in sorted(self.executions.values(), key=lambda e: e.id):
            for aid in ex.output_ids():
                producers.setdefault(aid, []).append(ex.id)
            for aid in ex.input_ids():
                consumers.setdefault(aid, []).append(ex.id)
        self._producers, self._consumers = producers, consumers

    def invalidate(self) -> None:
        self._producers = self._consumers = None

    def output_events(self, artifact_id: int) -> list[Execution]:
        """Executions with an OUTPUT event to the artifact (the producer, then cached reusers)."""
        if self._producers is None:
            self._index()
        return [self.executions[e] for e in self._producers.get(artifact_id, [])]

    def producer(self, artifact_id: int) -> Execution | None:
        """The execution that actually produced the artifact (not a cached reuse of it)."""
        events = self.output_events(artifact_id)
        for ex in events:
            if ex.state != CACHED:
                return ex
        return events[0] if events else None

    def consumers(self, artifact_id: int) -> list[Execution]:
        if self._consumers is None:
            self._index()
        return [self.executions[e] for e in self._consumers.get(artifact_id, [])]

    def run_executions(self, run_id: str) -> list[Execution]:
        run = self.runs[run_id]
        return sorted(
            (self.executions[e] for e in run.execution_ids if e in self.executions),
            key=lambda e: (e.start_ms, e.id),
        )

    def sorted_runs(self, pipeline: str | None = None) -> list[Run]:
        """Runs oldest first (by creation time, then id)."""
        runs = [r for r in self.runs.values() if pipeline is None or r.pipeline == pipeline]
        return sorted(runs, key=lambda r: (r.create_ms, r.id))

    def pipelines(self) -> list[str]:
        return sorted({r.pipeline for r in self.runs.values()})


# Output keys of the component that owns a type (Transform also emits statistics and anomalies
# of its transformed data under other keys): these come first.
PRIMARY_OUTPUT_KEYS = {
    "ExampleStatistics": "statistics",
    "ExampleAnomalies": "anomalies",
    "Schema": "schema",
    "ModelEvaluation": "evaluation",
}


def outputs_of_type(graph: Graph, executions: list[Execution], type_name: str) -> list[int]:
    """Ids of the executions' output artifacts of `type_name`, primary output keys first."""
    primary = PRIMARY_OUTPUT_KEYS.get(type_name)
    found: list[tuple[int, int]] = []
    for ex in executions:
        for key, ids in ex.outputs.items():
            for aid in ids:
                art = graph.artifacts.get(aid)
                if art is not None and art.type == type_name and all(aid != f for _, f in found):
                    found.append((0 if key == primary else 1, aid))
    return [aid for _, aid in sorted(found, key=lambda item: item[0])]
