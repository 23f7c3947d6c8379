"""Pure parts of `beamline monitor`: request rows, thresholds, environments, TFDV comparisons on
hand-built statistics, and the MLMD record (a real SQLite store)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tensorflow_serving.apis import prediction_log_pb2

from beamline.errors import ConfigError
from beamline.monitor.compare import compare, monitored_features, prediction_result
from beamline.monitor.thresholds import (
    DEFAULT_JSD,
    DEFAULT_L_INFINITY,
    parse_overrides,
    threshold_for,
)
from beamline.monitor.window import rows_of

SCHEMA = """
feature { name: "species" type: BYTES domain: "species" not_in_environment: "SERVING" }
feature { name: "island" type: BYTES domain: "island"
          skew_comparator { infinity_norm { threshold: 0.4 } } }
feature { name: "mass" type: INT int_domain { min: 2000 max: 7000 } }
feature { name: "year" type: INT }
string_domain { name: "species" value: "A" value: "G" }
string_domain { name: "island" value: "Biscoe" value: "Dream" }
default_environment: "TRAINING"
default_environment: "SERVING"
"""


def _schema():
    return text_format.Parse(SCHEMA, schema_pb2.Schema())


def test_predict_log_becomes_one_row_per_batch_row_with_predicted_classes():
    record = prediction_log_pb2.PredictionLog()
    request = record.predict_log.request
    request.inputs["island"].CopyFrom(tf.make_tensor_proto([b"Biscoe", b"Dream"]))
    request.inputs["mass"].CopyFrom(tf.make_tensor_proto([[4000], [5000]], tf.int64))
    response = record.predict_log.response
    response.outputs["scores"].CopyFrom(tf.make_tensor_proto([[0.9, 0.1], [0.2, 0.8]]))
    response.outputs["classes"].CopyFrom(tf.make_tensor_proto([[b"A", b"G"], [b"A", b"G"]]))
    rows, predicted = rows_of(record)
    assert rows == [{"island": [b"Biscoe"], "mass": [4000]}, {"island": [b"Dream"], "mass": [5000]}]
    assert predicted == ["A", "G"]


def test_classify_log_rows_merge_context_and_omit_absent_features():
    record = prediction_log_pb2.PredictionLog()
    with_context = record.classify_log.request.input.example_list_with_context
    with_context.context.features.feature["island"].bytes_list.value.append(b"Dream")
    with_context.examples.add().features.feature["mass"].int64_list.value.append(3000)
    with_context.examples.add()  # nothing but the context
    classes = record.classify_log.response.result.classifications
    for label_scores in ((("A", 0.3), ("G", 0.7)), (("A", 0.6), ("G", 0.4))):
        c = classes.add()
        for label, score in label_scores:
            c.classes.add(label=label, score=score)
    rows, predicted = rows_of(record)
    assert rows == [{"island": [b"Dream"], "mass": [3000]}, {"island": [b"Dream"]}]
    assert predicted == ["G", "A"]


def test_thresholds_come_from_override_then_schema_then_default():
    schema = _schema()
    island, mass = schema.feature[1], schema.feature[2]
    assert threshold_for(island, "skew", {}).value == 0.4
    assert threshold_for(island, "skew", {}).source == "schema"
    assert threshold_for(island, "drift", {}).value == DEFAULT_L_INFINITY
    assert threshold_for(mass, "skew", {}).measure == "jensen_shannon_divergence"
    assert threshold_for(mass, "skew", {}).value == DEFAULT_JSD
    assert threshold_for(mass, "skew", {"mass": 0.3}).source == "override"
    assert parse_overrides(("mass=0.3", "prediction=0.5")) == {"mass": 0.3, "prediction": 0.5}
    for bad in ("mass", "mass=x", "mass=2", "=0.1"):
        with pytest.raises(ConfigError, match="FEATURE=VALUE"):
            parse_overrides((bad,))


def test_only_serving_features_the_model_was_sent_are_monitored():
    assert monitored_features(_schema(), {"island", "mass", "species"}) == ["island", "mass"]


def _stats(islands: dict[str, int], masses: list[int]):
    """Statistics of rows with these island counts and mass values, computed by TFDV."""
    import pyarrow as pa
    import tensorflow_data_validation as tfdv

    island_values = [k for k, n in islands.items() for _ in range(n)]
    table = pa.Table.from_pydict(
        {
            "island": [[v.encode()] for v in island_values],
            "mass": [[m] for m in masses[: len(island_values)]],
        }
    )
    return tfdv.generate_statistics_from_dataframe(table.to_pandas())


def test_tfdv_measures_skew_drift_and_schema_findings():
    rng = np.random.default_rng(0)
    training = _stats({"Biscoe": 60, "Dream": 40}, list(rng.integers(3000, 5000, 100)))
    same = _stats({"Biscoe": 30, "Dream": 20}, list(rng.integers(3000, 5000, 50)))
    moved = _stats({"Biscoe": 10, "Dream": 10, "Atlantis": 30}, list(rng.integers(6000, 9000, 50)))
    results = {
        r.feature: r for r in compare(training, moved, same, _schema(), ["island", "mass"], {})
    }
    island, mass = results["island"], results["mass"]
    assert island.skew.value > 0.4 and island.crossed  # the schema's own threshold, 0.4
    assert island.drift is not None and island.drift.crossed
    assert any("Unexpected string values" in s for s in island.schema)
    assert mass.skew.value > DEFAULT_JSD and any("Out-of-range" in s for s in mass.schema)
    calm = {r.feature: r for r in compare(training, same, None, _schema(), ["island", "mass"], {})}
    assert not calm["island"].crossed and not calm["mass"].crossed
    assert calm["island"].drift is None


def test_prediction_distribution_against_eval_labels():
    def label_stats(counts):
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        feature = stats.datasets.add().features.add()
        feature.path.step.append("species")
        for label, n in counts.items():
            feature.string_stats.rank_histogram.buckets.add(label=label, sample_count=n)
        return stats

    evaluation = label_stats({"A": 50, "G": 50})
    assert not prediction_result(["A", "G"] * 10, evaluation, "species", {}).crossed
    skewed = prediction_result(["G"] * 20, evaluation, "species", {})
    assert skewed.crossed and skewed.skew.value == pytest.approx(0.5)
    assert (
        prediction_result(["G"] * 20, evaluation, "species", {"prediction": 0.6}).crossed is False
    )


def test_monitoring_execution_is_recorded_and_found_again(tmp_path):
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata.connection import sqlite_config
    from beamline.monitor.record import monitored_by, previous_window, record_monitoring

    store = mlmd.MetadataStore(sqlite_config(tmp_path / "m.sqlite"))
    model_type = store.put_artifact_type(pb.ArtifactType(name="Model"))
    [model] = store.put_artifacts([pb.Artifact(type_id=model_type, uri="/m")])

    def record(first, last, verdict, crossed):
        return record_monitoring(
            store,
            "penguin",
            {"model": model},
            statistics_uri=str(tmp_path / f"w{first}"),
            result_uri=str(tmp_path / f"w{first}" / "result.json"),
            summary={
                "model_name": "penguin",
                "version": 7,
                "first_secs": first,
                "last_secs": last,
                "requests": 10,
                "verdict": verdict,
                "crossed": crossed,
                "result": {"features": []},
            },
        )

    first = record(100, 150, "ok", [])
    second = record(200, 250, "threshold crossed", ["mass"])
    assert previous_window(store, "penguin", "penguin", 200).execution_id == first
    assert previous_window(store, "penguin", "penguin", 300).execution_id == second
    assert previous_window(store, "penguin", "penguin", 100) is None
    assert previous_window(store, "taxi", "penguin", 300) is None
    found = monitored_by(store, [model])
    assert [(r.execution_id, r.version, r.crossed) for r in found] == [
        (first, 7, []),
        (second, 7, ["mass"]),
    ]
    assert found[1].statistics_uri == str(tmp_path / "w200")
