"""What changed between two runs: source data, parameters, module code, statistics drift per
feature, anomalies, evaluation metrics, blessing and pushed version.

Each node's *effective* execution is compared: for a cached node, the execution whose outputs it
reused (that is the one that recorded the driver's properties, e.g. the input fingerprint).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.lineage import payloads, tfma
from beamline.lineage.drift import FeatureDrift, feature_drift, schema_drift_thresholds
from beamline.lineage.model import Execution, Graph, Run, outputs_of_type
from beamline.lineage.runs import summarize
from beamline.lineage.sources import is_example_gen, parse_fingerprint
from beamline.lineage.why import Change, original, property_changes
from beamline.metrics import improved

DEFAULT_DRIFT_THRESHOLD = 0.1


@dataclass
class NodeDiff:
    node: str
    state_a: str | None
    state_b: str | None
    same_execution: bool  # B reused A's execution (or the same original)
    changes: list[Change] = field(default_factory=list)


@dataclass
class RunDiff:
    run_a: str
    run_b: str
    pipeline_a: str
    pipeline_b: str
    data: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[NodeDiff] = field(default_factory=list)
    drift: dict[str, list[FeatureDrift]] = field(default_factory=dict)  # per split
    anomalies_new: list[dict[str, str]] = field(default_factory=list)
    anomalies_resolved: list[dict[str, str]] = field(default_factory=list)
    # metric -> {"a": x, "b": y, "delta": y - x, "better": B improved on A (None: no change,
    # or no direction)}, per slice; better follows the metric's direction (a lower RMSE is)
    metrics: dict[str, dict[str, dict[str, float | bool | None]]] = field(default_factory=dict)
    blessed: tuple[bool | None, bool | None] = (None, None)
    span: tuple[str | None, str | None] = (None, None)  # the TFX span each run read
    pushed_version: tuple[str | None, str | None] = (None, None)
    notes: list[str] = field(default_factory=list)

    def code_changes(self) -> list[tuple[str, Change]]:
        return [(n.node, c) for n in self.nodes for c in n.changes if c.kind == "code"]

    def param_changes(self) -> list[tuple[str, Change]]:
        return [(n.node, c) for n in self.nodes for c in n.changes if c.kind == "property"]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _by_node(graph: Graph, run: Run) -> dict[str, Execution]:
    out: dict[str, Execution] = {}
    for ex in graph.run_executions(run.id):
        out[ex.node_id] = ex
    return out


def _output_of_type(graph: Graph, executions: list[Execution], type_name: str) -> list[int]:
    return outputs_of_type(graph, executions, type_name)


def _data_changes(a: Execution | None, b: Execution | None) -> list[dict[str, Any]]:
    out = []
    if a is None or b is None:
        return out
    base_a, base_b = a.prop("input_base"), b.prop("input_base")
    fps_a = {f.split: f for f in parse_fingerprint(a.prop("input_fingerprint"))}
    fps_b = {f.split: f for f in parse_fingerprint(b.prop("input_fingerprint"))}
    for split in sorted(set(fps_a) | set(fps_b)):
        fa, fb = fps_a.get(split), fps_b.get(split)
        same = (
            fa is not None
            and fb is not None
            and (fa.num_files, fa.total_bytes, fa.xor_checksum, fa.sum_checksum)
            == (fb.num_files, fb.total_bytes, fb.xor_checksum, fb.sum_checksum)
        )
        out.append(
            {
                "node": b.node_id,
                "split": split,
                "input_base_a": base_a,
                "input_base_b": base_b,
                "a": fa.describe() if fa else None,
                "b": fb.describe() if fb else None,
                "fingerprint_a": a.prop("input_fingerprint"),
                "fingerprint_b": b.prop("input_fingerprint"),
                "changed": not same or base_a != base_b,
            }
        )
    return out


def _anomaly_set(graph: Graph, ids: list[int]) -> dict[tuple[str, ...], dict[str, str]]:
    return {
        (item["node"], item["split"], item["feature"], item["short"]): item
        for item in payloads.recorded_anomalies(graph, ids)
    }


def _evaluation(graph: Graph, ids: list[int]) -> tfma.Evaluation | None:
    for aid in ids:
        found = payloads.safe(tfma.load_evaluation, graph.artifacts[aid].uri)
        if found is not None:
            return found
    return None


def diff_runs(
    graph: Graph,
    run_a: Run,
    run_b: Run,
    drift_threshold: float = DEFAULT_DRIFT_THRESHOLD,
    payload: bool = True,
    graph_b: Graph | None = None,
) -> RunDiff:
    """What changed from `run_a` to `run_b`. `graph_b`: the store run B is in, when it is not
    A's (`beamline reproduce` compares a run with its reproduction in a new root); ids are then
    never shared, so no node counts as the same execution and no artifact as the same."""
    graph_a = graph
    graph_b = graph if graph_b is None else graph_b
    shared = graph_b is graph_a
    result = RunDiff(run_a.id, run_b.id, run_a.pipeline, run_b.pipeline)
    nodes_a, nodes_b = _by_node(graph_a, run_a), _by_node(graph_b, run_b)
    for node in sorted(set(nodes_a) | set(nodes_b)):
        ea, eb = nodes_a.get(node), nodes_b.get(node)
        diff = NodeDiff(node, ea.state if ea else None, eb.state if eb else None, False)
        if ea is not None and eb is not None:
            oa, ob = original(graph_a, ea), original(graph_b, eb)
            diff.same_execution = shared and oa.id == ob.id
            if not diff.same_execution:
                diff.changes = [c for c in property_changes(oa, ob) if c.kind != "data"]
                if is_example_gen(oa) or is_example_gen(ob):
                    result.data.extend(_data_changes(oa, ob))
        result.nodes.append(diff)

    sa, sb = summarize(graph_a, run_a), summarize(graph_b, run_b)
    result.blessed = (sa.blessed, sb.blessed)
    result.span = (sa.span, sb.span)
    result.pushed_version = (sa.pushed_version, sb.pushed_version)
    if not payload:
        return result

    execs_a, execs_b = list(nodes_a.values()), list(nodes_b.values())
    # Statistics drift, split by split.
    stats_a = _output_of_type(graph_a, execs_a, "ExampleStatistics")
    stats_b = _output_of_type(graph_b, execs_b, "ExampleStatistics")
    if shared and stats_a and stats_b and stats_a[0] == stats_b[0]:
        result.notes.append(
            f"Both runs used the same statistics (ExampleStatistics #{stats_a[0]}): no drift."
        )
    elif stats_a and stats_b:
        thresholds: dict[str, float] = {}
        schemas = _output_of_type(graph_b, execs_b, "Schema")
        if schemas:
            schema = payloads.safe(payloads.load_schema, graph_b.artifacts[schemas[0]].uri)
            if schema is not None:
                thresholds = schema_drift_thresholds(schema)
        la = payloads.safe(payloads.load_statistics, graph_a.artifacts[stats_a[0]].uri,
                           default={})
        lb = payloads.safe(payloads.load_statistics, graph_b.artifacts[stats_b[0]].uri,
                           default={})
        for split in sorted(set(la) & set(lb)):
            _, fa = payloads.feature_summaries(la[split])
            _, fb = payloads.feature_summaries(lb[split])
            result.drift[split] = feature_drift(fa, fb, drift_threshold, thresholds)
        if not (set(la) & set(lb)):
            result.notes.append("Statistics files could not be read for both runs.")
    # Anomalies.
    an_a = _anomaly_set(graph_a, _output_of_type(graph_a, execs_a, "ExampleAnomalies"))
    an_b = _anomaly_set(graph_b, _output_of_type(graph_b, execs_b, "ExampleAnomalies"))
    result.anomalies_new = [v for k, v in an_b.items() if k not in an_a]
    result.anomalies_resolved = [v for k, v in an_a.items() if k not in an_b]
    # Evaluation metrics (candidate model of each run), per slice.
    ev_a = _evaluation(graph_a, _output_of_type(graph_a, execs_a, "ModelEvaluation"))
    ev_b = _evaluation(graph_b, _output_of_type(graph_b, execs_b, "ModelEvaluation"))
    if ev_a is not None or ev_b is not None:
        ma = ev_a.candidate() if ev_a else {}
        mb = ev_b.candidate() if ev_b else {}
        for slice_name in sorted(set(ma) | set(mb), key=lambda s: (s != "Overall", s)):
            rows = {}
            for metric in sorted(set(ma.get(slice_name, {})) | set(mb.get(slice_name, {}))):
                x = ma.get(slice_name, {}).get(metric)
                y = mb.get(slice_name, {}).get(metric)
                delta = (y - x) if x is not None and y is not None else None
                rows[metric] = {"a": x, "b": y, "delta": delta, "better": improved(metric, delta)}
            result.metrics[slice_name] = rows
    return result
