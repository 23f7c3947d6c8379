"""What artifacts hold on disk, as the report and `beamline diff` read them."""

from __future__ import annotations

from beamline.lineage import payloads
from beamline.lineage.diff import _anomaly_set
from beamline.lineage.model import Artifact, Execution, Graph
from beamline.report.sections import anomalies as anomalies_section


def _graph(tmp_path) -> Graph:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    uri = tmp_path / "anomalies"
    split = uri / "Split-eval"
    split.mkdir(parents=True)
    found = anomalies_pb2.Anomalies()
    info = found.anomaly_info["color"]
    info.severity = anomalies_pb2.AnomalyInfo.ERROR
    info.short_description = "Unexpected string values"
    info.description = "Examples contain values missing from the schema: teal."
    (split / "SchemaDiff.pb").write_bytes(found.SerializeToString())
    graph = Graph(source="test")
    graph.artifacts[1] = Artifact(1, "ExampleAnomalies", str(uri))
    graph.artifacts[2] = Artifact(2, "ExampleAnomalies", str(tmp_path / "unreadable"))
    graph.executions[1] = Execution(
        id=1, type="x.ExampleValidator", node_id="ExampleValidator", pipeline="p", run_id="r1",
        state="COMPLETE", start_ms=1, end_ms=2, properties={}, inputs={},
        outputs={"anomalies": [1, 2]},
    )
    return graph


def test_recorded_anomalies_name_their_node_split_and_feature(tmp_path):
    graph = _graph(tmp_path)
    (item,) = payloads.recorded_anomalies(graph, [1, 2])
    assert item == {
        "node": "ExampleValidator", "split": "eval", "feature": "color", "severity": "ERROR",
        "short": "Unexpected string values",
        "description": "Examples contain values missing from the schema: teal.",
    }
    # The diff and the report read the same anomalies.
    assert list(_anomaly_set(graph, [1, 2])) == [("ExampleValidator", "eval", "color",
                                                  "Unexpected string values")]
    html = anomalies_section(graph, list(graph.executions.values()))
    assert 'id="anomalies-table"' in html and "teal" in html
