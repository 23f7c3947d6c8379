"""Lineage: from a served model back to its source files, and from a data file forward to every
model and pushed version that came from it.

Edges follow MLMD events (artifact -> consuming execution -> output artifact). A cached execution
is folded into the execution that produced its outputs. Baseline inputs (the Evaluator's
`baseline_model`, fed by a Resolver) are shown but not followed: the baseline is compared with,
not built from.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.errors import ConfigError
from beamline.lineage import payloads, tfma
from beamline.lineage.model import CACHED, Artifact, Execution, Graph
from beamline.lineage.runs import flink_job_ids
from beamline.lineage.sources import SourceData, file_matches, is_example_gen, source_data
from beamline.lineage.why import CODE_PROPERTIES, module_fingerprint, original

BASELINE_KEYS = ("baseline_model",)
MODEL_TYPES = ("Model",)


class UnknownArtifact(ConfigError):
    """A lineage reference that matches no artifact, version or data file (exit code 2)."""


@dataclass
class Step:
    """One execution on a lineage path, with what a reader wants to know about it."""

    execution_id: int
    node: str
    component: str
    run_id: str
    state: str
    duration_s: float
    inputs: dict[str, list[int]]
    outputs: dict[str, list[int]]
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lineage:
    direction: str  # "upstream" | "downstream"
    target: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    artifacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    sources: list[SourceData] = field(default_factory=list)
    baselines: list[int] = field(default_factory=list)  # baseline model artifact ids (not followed)
    models: list[int] = field(default_factory=list)
    pushed: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["artifacts"] = {str(k): v for k, v in self.artifacts.items()}
        return data


def artifact_json(graph: Graph, art: Artifact) -> dict[str, Any]:
    producer = graph.producer(art.id)
    return {
        "id": art.id,
        "type": art.type,
        "uri": art.uri,
        "state": art.state,
        "properties": {k: v for k, v in art.properties.items() if k != "tfx_version"},
        "producer": producer.id if producer else None,
        "producer_node": producer.node_id if producer else None,
        "run_id": producer.run_id if producer else None,
    }


# ---------------------------------------------------------------- facts per execution


def execution_facts(graph: Graph, ex: Execution, payload: bool = True) -> dict[str, Any]:
    """Readable facts: module fingerprints, parameters, blessing, metrics, hyperparameters."""
    facts: dict[str, Any] = {}
    for key in CODE_PROPERTIES:
        value = ex.prop(key)
        if value and key in ("module_path", "module_file"):
            facts["module"] = value
        fingerprint = module_fingerprint(value) if value else None
        if fingerprint and key in ("module_path", "module_file", "custom_config"):
            facts["module_fingerprint"] = fingerprint
    for key in ("train_args", "eval_args", "tune_args", "custom_config", "eval_config"):
        value = ex.prop(key)
        if value not in (None, "", "{}", "null"):
            facts[key] = value
    if flink_job_ids(ex):
        facts["flink_jobs"] = flink_job_ids(ex)
    for aid in ex.output_ids():
        art = graph.artifacts.get(aid)
        if art is None:
            continue
        if art.type == "ModelBlessing":
            facts["blessed"] = (
                bool(art.prop("blessed")) if art.prop("blessed") is not None else None
            )
            if art.prop("baseline_model_id"):
                facts["baseline_model"] = art.prop("baseline_model_id")
        elif art.type == "PushedModel":
            facts["pushed"] = art.prop("pushed") == 1
            facts["pushed_version"] = art.prop("pushed_version")
            facts["pushed_destination"] = art.prop("pushed_destination")
        elif art.type == "ModelEvaluation" and payload:
            evaluation = payloads.safe(tfma.load_evaluation, art.uri)
            if evaluation is not None:
                overall = evaluation.candidate().get("Overall", {})
                facts["metrics"] = overall
                if evaluation.baseline():
                    facts["baseline_metrics"] = evaluation.baseline().get("Overall", {})
                if evaluation.validation_ok is not None:
                    facts["validation_ok"] = evaluation.validation_ok
        elif art.type == "ExampleAnomalies" and payload:
            found = payloads.safe(payloads.load_anomalies, art.uri, default={})
            facts["anomalies"] = {
                split: [a["feature"] for a in payloads.anomaly_list(anoms)]
                for split, anoms in found.items()
            }
        elif art.type == "HyperParameters" and payload:
            facts["hyperparameters"] = payloads.safe(
                payloads.load_hyperparameters, art.uri, default={}
            )
        elif art.type == "Examples":
            for key in ("span", "version", "input_fingerprint"):
                if art.prop(key) is not None:
                    facts[key] = art.prop(key)
    if payload:
        for key in ("hyperparameters",):
            for aid in ex.inputs.get(key, []):
                art = graph.artifacts.get(aid)
                if art is not None and art.type == "HyperParameters":
                    facts["hyperparameters"] = payloads.safe(
                        payloads.load_hyperparameters, art.uri, default={}
                    )
    return facts


def _step(graph: Graph, ex: Execution, payload: bool) -> Step:
    return Step(
        execution_id=ex.id,
        node=ex.node_id,
        component=ex.component,
        run_id=ex.run_id,
        state=ex.state,
        duration_s=round(ex.duration_s, 3),
        inputs=ex.inputs,
        outputs=ex.outputs,
        facts=execution_facts(graph, ex, payload),
    )


# ---------------------------------------------------------------- finding the target


@dataclass
class Target:
    artifacts: list[Artifact]
    data_path: str | None = None  # set for a data file/directory (forward lineage)


def find_target(graph: Graph, ref: str) -> Target:
    """What `ref` names: `artifact:N`/`#N`, `version:V`, a pushed version, an artifact id, a
    model/pushed directory, or a source data file or directory."""
    ref = ref.strip()
    pushed = [a for a in graph.artifacts.values() if a.type == "PushedModel" and a.prop("pushed")]
    if ref.startswith(("artifact:", "#")):
        number = ref.split(":", 1)[-1].lstrip("#")
        if number.isdigit() and int(number) in graph.artifacts:
            return Target([graph.artifacts[int(number)]])
        raise UnknownArtifact(f"No artifact with id {number} in {graph.source}.")
    if ref.startswith("version:"):
        ref = ref[len("version:") :]
    by_version = [a for a in pushed if str(a.prop("pushed_version")) == ref]
    destinations = sorted({str(a.prop("pushed_destination")) for a in by_version})
    if len(destinations) > 1:
        # Versions are unix seconds: two pipelines (or roots) pushing in the same second share one.
        raise UnknownArtifact(
            f"Pushed version {ref} names {len(destinations)} different pushed models in "
            f"{graph.source}: {', '.join(destinations)}. Pass the pushed-model directory instead, "
            "or narrow the store with --pipeline."
        )
    if by_version:
        return Target(by_version[-1:])
    if ref.isdigit() and int(ref) in graph.artifacts:
        return Target([graph.artifacts[int(ref)]])
    path = os.path.abspath(os.path.expanduser(ref))
    for art in pushed:
        dest = os.path.abspath(str(art.prop("pushed_destination") or ""))
        if dest and (path == dest or path.startswith(dest + os.sep)):
            return Target([art])
    inside = [
        a
        for a in graph.artifacts.values()
        if a.uri
        and (path == os.path.abspath(a.uri) or path.startswith(os.path.abspath(a.uri) + os.sep))
    ]
    if inside:
        return Target([max(inside, key=lambda a: len(a.uri))])
    if any(is_example_gen(e) and file_matches(e, path) for e in graph.executions.values()):
        return Target([], data_path=path)
    versions = ", ".join(str(a.prop("pushed_version")) for a in pushed[-5:]) or "none"
    raise UnknownArtifact(
        f"Nothing in {graph.source} matches {ref!r}: not a label a version holds now (`beamline "
        f"labels PIPELINE` lists them), a pushed version (recent: {versions}), an artifact id, a "
        "model or pushed-model directory, or a source data file that an ExampleGen read. "
        "`beamline runs` shows pushed versions."
    )


# ---------------------------------------------------------------- walking


def upstream(graph: Graph, artifact_id: int, payload: bool = True) -> Lineage:
    """Everything `artifact_id` was built from, newest step first, down to the source files."""
    target = graph.artifacts[artifact_id]
    result = Lineage("upstream", artifact_json(graph, target))
    seen_execs: set[int] = set()
    pending = [artifact_id]
    seen_arts: set[int] = set()
    while pending:
        aid = pending.pop()
        if aid in seen_arts:
            continue
        seen_arts.add(aid)
        art = graph.artifacts.get(aid)
        if art is not None:
            result.artifacts[aid] = artifact_json(graph, art)
        producer = graph.producer(aid)
        if producer is None or producer.id in seen_execs:
            continue
        seen_execs.add(producer.id)
        for key, ids in producer.inputs.items():
            if key in BASELINE_KEYS:
                for bid in ids:
                    if bid not in result.baselines:
                        result.baselines.append(bid)
                    if bid in graph.artifacts:
                        result.artifacts[bid] = artifact_json(graph, graph.artifacts[bid])
                continue
            pending.extend(ids)
    execs = sorted((graph.executions[e] for e in seen_execs), key=lambda e: e.id, reverse=True)
    for ex in execs:
        result.steps.append(_step(graph, ex, payload))
        if is_example_gen(ex):
            result.sources.append(source_data(ex))
    result.models = sorted(
        a for a in seen_arts if a in graph.artifacts and graph.artifacts[a].type in MODEL_TYPES
    )
    result.pushed = [
        _pushed_json(graph, graph.artifacts[a])
        for a in sorted(seen_arts)
        if a in graph.artifacts and graph.artifacts[a].type == "PushedModel"
    ]
    return result


def _pushed_json(graph: Graph, art: Artifact) -> dict[str, Any]:
    producer = graph.producer(art.id)
    return {
        "artifact_id": art.id,
        "pushed": art.prop("pushed") == 1,
        "version": art.prop("pushed_version"),
        "destination": art.prop("pushed_destination"),
        "run_id": producer.run_id if producer else None,
    }


def downstream(graph: Graph, start: list[int], payload: bool = False) -> Lineage:
    """Everything built from the `start` artifacts (baseline comparisons not followed)."""
    first = graph.artifacts[start[0]] if start else None
    result = Lineage("downstream", artifact_json(graph, first) if first else {})
    seen_arts: set[int] = set()
    seen_execs: set[int] = set()
    pending = list(start)
    while pending:
        aid = pending.pop()
        if aid in seen_arts:
            continue
        seen_arts.add(aid)
        if aid in graph.artifacts:
            result.artifacts[aid] = artifact_json(graph, graph.artifacts[aid])
        for consumer in graph.consumers(aid):
            keys = [k for k, ids in consumer.inputs.items() if aid in ids]
            if keys and all(k in BASELINE_KEYS for k in keys):
                continue
            actual = original(graph, consumer) if consumer.state == CACHED else consumer
            for ex in {consumer.id: consumer, actual.id: actual}.values():
                if ex.id in seen_execs:
                    continue
                seen_execs.add(ex.id)
                pending.extend(ex.output_ids())
    execs = sorted((graph.executions[e] for e in seen_execs), key=lambda e: e.id)
    result.steps = [_step(graph, ex, payload) for ex in execs if ex.state != CACHED]
    result.models = sorted(
        a for a in seen_arts if a in graph.artifacts and graph.artifacts[a].type in MODEL_TYPES
    )
    result.pushed = [
        _pushed_json(graph, graph.artifacts[a])
        for a in sorted(seen_arts)
        if a in graph.artifacts
        and graph.artifacts[a].type == "PushedModel"
        and graph.artifacts[a].prop("pushed") == 1
    ]
    return result


def from_data_file(graph: Graph, path: str) -> tuple[list[SourceData], Lineage]:
    """The ExampleGen executions that read `path`, and everything built from their outputs."""
    gens = [
        e
        for e in sorted(graph.executions.values(), key=lambda e: e.id)
        if is_example_gen(e) and e.state != CACHED and file_matches(e, path)
    ]
    start = [aid for e in gens for aid in e.output_ids()]
    lineage = downstream(graph, start)
    lineage.steps = [_step(graph, e, False) for e in gens] + lineage.steps
    lineage.target = {"data_path": path, "example_gen_executions": [e.id for e in gens]}
    return [source_data(e) for e in gens], lineage
