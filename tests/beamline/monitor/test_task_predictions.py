"""What `beamline monitor` reads from a binary or a regression model's answers and compares with
the labels of the eval split: the predicted number of each row (predict `outputs`, regress
results), predicted classes against an integer label, and the text naming prediction drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_serving.apis import prediction_log_pb2

from beamline.monitor.compare import (
    label_shares,
    prediction_result,
    prediction_values_result,
    value_histogram,
)
from beamline.monitor.monitor import MonitorReport, VersionReport
from beamline.monitor.table import report_text
from beamline.monitor.thresholds import DEFAULT_JSD, JSD, L_INFINITY
from beamline.monitor.window import read_window, rows_of
from beamline_serving.request_log.tfrecord import frame

STAMP = 1_800_000_000


def _stats(column: str, values):
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(pd.DataFrame({column: values}))


def _regression_predict(bmi: list[float], outputs) -> prediction_log_pb2.PredictionLog:
    record = prediction_log_pb2.PredictionLog()
    record.log_metadata.model_spec.name = "diabetes"
    record.log_metadata.model_spec.version.value = 7
    record.log_metadata.timestamp_secs = STAMP
    record.predict_log.request.inputs["bmi"].CopyFrom(tf.make_tensor_proto(bmi))
    record.predict_log.response.outputs["outputs"].CopyFrom(tf.make_tensor_proto(outputs))
    return record


def test_a_regression_models_answers_are_its_predicted_numbers():
    rows, predicted = rows_of(_regression_predict([0.06, -0.05], [152.5, 80.25]))
    assert rows == [{"bmi": [pytest.approx(0.06)]}, {"bmi": [pytest.approx(-0.05)]}]
    assert predicted == [152.5, 80.25] and all(isinstance(p, float) for p in predicted)
    # A single-unit head answers [batch, 1] when the signature does not reshape it.
    assert rows_of(_regression_predict([0.1, 0.2], [[1.5], [2.5]]))[1] == [1.5, 2.5]
    # Neither a number per row nor a float: no answers, rather than wrong ones.
    assert rows_of(_regression_predict([0.1, 0.2], [1.5, 2.5, 3.5]))[1] == []
    assert rows_of(_regression_predict([0.1, 0.2], [[1, 2], [3, 4]]))[1] == []

    record = prediction_log_pb2.PredictionLog()
    examples = record.regress_log.request.input.example_list.examples
    for bmi in (0.01, 0.02):
        examples.add().features.feature["bmi"].float_list.value.append(bmi)
    for value in (101.0, 202.0):
        record.regress_log.response.result.regressions.add(value=value)
    rows, predicted = rows_of(record)
    assert len(rows) == 2 and predicted == [101.0, 202.0]


def test_a_window_keeps_numbers_apart_from_classes(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with open(logs / "diabetes-1.tfrecord", "wb") as out:
        for record in (
            _regression_predict([0.06, -0.05], [152.5, 80.25]),
            _regression_predict([0.01], [99.0]),
        ):
            out.write(frame(record.SerializeToString()))
    [traffic] = read_window(logs).traffic.values()
    assert traffic.predicted_values == [152.5, 80.25, 99.0]
    assert traffic.predicted == []


def test_an_integer_labels_classes_come_from_its_numeric_histogram():
    # StatisticsGen describes an integer label (binary 0/1, or 0/1/2) as numeric: TFDV's
    # standard histogram, drawn from quantiles, leaves a little mass between the classes.
    binary = label_shares(_stats("target", [0] * 77 + [1] * 103), "target")
    assert binary.keys() == {"0", "1"}
    assert binary["0"] == pytest.approx(77 / 180, abs=0.005)
    three = label_shares(_stats("target", [0] * 55 + [1] * 66 + [2] * 45), "target")
    assert three == pytest.approx({"0": 55 / 166, "1": 66 / 166, "2": 45 / 166}, abs=0.005)
    # A quantity is not classes.
    assert label_shares(_stats("target", [0.5, 1.7, 2.25, 3.1]), "target") == {}


def test_a_binary_models_classes_against_an_integer_label():
    evaluation = _stats("target", [0] * 40 + [1] * 60)
    alike = prediction_result(["0"] * 38 + ["1"] * 62, evaluation, "target", {})
    assert alike.skew.measure == L_INFINITY and alike.skew.value < 0.05 and not alike.crossed
    assert dict(alike.histograms["training"]).keys() == {"0", "1"}
    one_class = prediction_result(["1"] * 50, evaluation, "target", {})
    assert one_class.crossed and one_class.skew.value == pytest.approx(0.4, abs=0.01)


def test_predicted_numbers_against_the_eval_labels_by_tfdvs_divergence():
    import tensorflow_data_validation as tfdv

    rng = np.random.default_rng(0)
    evaluation = _stats("target", rng.normal(150, 75, 400))
    # A model predicts closer to the mean than the labels spread: within the threshold.
    healthy = prediction_values_result(list(rng.normal(150, 60, 300)), evaluation, "target", {})
    assert healthy.feature == "prediction (target)" and healthy.kind == "prediction"
    assert healthy.skew.measure == JSD and healthy.skew.threshold == DEFAULT_JSD
    assert 0 < healthy.skew.value < DEFAULT_JSD and not healthy.crossed
    assert len(healthy.histograms["window"]) == 10
    assert sum(share for _, share in healthy.histograms["window"]) == pytest.approx(1.0)

    moved = list(rng.normal(300, 60, 300))
    drifted = prediction_values_result(moved, evaluation, "target", {})
    assert drifted.crossed
    assert not prediction_values_result(moved, evaluation, "target", {"prediction": 0.9}).crossed
    # The same measure as TFDV's numeric skew comparator on the same two samples.
    schema = text_format.Parse(
        'feature { name: "target" type: FLOAT '
        "skew_comparator { jensen_shannon_divergence { threshold: 0.01 } } }",
        schema_pb2.Schema(),
    )
    anomalies = tfdv.validate_statistics(
        statistics=evaluation, schema=schema, serving_statistics=_stats("target", moved)
    )
    [tfdv_value] = [m.value for e in anomalies.drift_skew_info for m in e.skew_measurements]
    assert drifted.skew.value == pytest.approx(tfdv_value, abs=0.01)

    assert prediction_values_result([], evaluation, "target", {}) is None
    assert prediction_values_result([1.0], evaluation, None, {}) is None


def test_a_value_histogram_is_laid_out_as_tfdvs_standard_histogram():
    buckets = value_histogram([0.0, 1.0, 2.5, 10.0])
    assert len(buckets) == 10 and buckets[0][:2] == (0.0, 1.0) and buckets[-1][1] == 10.0
    assert [count for _, _, count in buckets] == [1, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert value_histogram([3.0, 3.0]) == [(3.0, 3.0, 2.0)]


def test_the_report_names_prediction_drift():
    rng = np.random.default_rng(1)
    evaluation = _stats("target", rng.normal(150, 75, 200))
    result = prediction_values_result(list(rng.normal(400, 10, 50)), evaluation, "target", {})
    version = VersionReport("diabetes", 7, 50, STAMP, STAMP + 60, "run-1", features=[result])
    report = MonitorReport("diabetes", "/logs", None, None, 1, 50, {}, versions=[version])
    text = report_text(report)
    assert "prediction drift (target): the predicted numbers against the labels of the eval " \
        "split, JSD" in text
    assert "thresholds crossed: prediction (target)" in text
