"""`beamline serve` logs what it answers: REST row/columnar/classify/regress and gRPC predict/
classify, read back from the TFRecord files the real server wrote."""

from __future__ import annotations

import grpc
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from beamline_serving.request_log.outcomes import outcome_files, read_outcomes
from beamline_serving.request_log.reader import LogScan, read_prediction_logs
from tests.serving.support import example_rows, make_example, running_server, write_test_model

LOGGED_METRIC = ':tensorflow:serving:request_log_count{model_name="penguin",outcome="logged"}'


def wait_for_metric(rest_url: str, needle: str, timeout: float = 15.0) -> str:
    """The Prometheus page once it contains `needle` (or the last page read, after `timeout`)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        page = requests.get(f"{rest_url}/monitoring/prometheus/metrics").text
        if needle in page or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def test_every_format_is_logged_with_model_version_and_warmup_is_not(tmp_path):
    base = tmp_path / "models" / "penguin"
    write_test_model(base / "3", 3)  # with warm-up requests, which must not be logged
    logs = tmp_path / "logs"
    config = tmp_path / "models.config"
    config.write_text(
        f"""
        model_config_list {{ config {{
          name: 'penguin' base_path: '{base}' model_platform: 'tensorflow'
          logging_config {{
            sampling_config {{ sampling_rate: 1.0 }}
            log_collector_config {{ type: 'tfrecord' filename_prefix: '{logs}/penguin' }}
          }}
        }} }}"""
    )
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    rows = example_rows()
    with running_server(
        ready_model="penguin",
        args=[
            f"--model_config_file={config}",
            f"--monitoring_config_file={monitoring}",
            "--request_log_exclude=flipper_length_mm",
        ],
        log_dir=tmp_path,
    ) as server:
        url = f"{server.rest_url}/v1/models/penguin"
        assert requests.post(f"{url}:predict", json={"instances": rows}).status_code == 200
        columnar = {k: [r[k] for r in rows[:2]] for k in rows[0]}
        assert requests.post(f"{url}:predict", json={"inputs": columnar}).status_code == 200
        classify = {"signature_name": "classification", "examples": rows[:1]}
        assert requests.post(f"{url}:classify", json=classify).status_code == 200
        regress = {"signature_name": "regression", "examples": rows[1:]}
        assert requests.post(f"{url}:regress", json=regress).status_code == 200
        bad = requests.post(f"{url}:predict", json={"instances": [{"island": "x"}]})
        assert bad.status_code == 400  # refused requests are not logged
        absent = requests.post(f"{url}/versions/9:predict", json={"instances": rows})
        assert absent.status_code == 404  # reached no version: no outcome record either

        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "penguin"
            request.inputs["bill_length_mm"].CopyFrom(tf.make_tensor_proto([40.0], tf.float32))
            request.inputs["flipper_length_mm"].CopyFrom(tf.make_tensor_proto([190], tf.int64))
            request.inputs["island"].CopyFrom(tf.make_tensor_proto([b"Dream"]))
            stub.Predict(request, timeout=30)
            classify_request = classification_pb2.ClassificationRequest()
            classify_request.model_spec.name = "penguin"
            classify_request.model_spec.signature_name = "classification"
            for row in rows:
                classify_request.input.example_list.examples.add().CopyFrom(make_example(row))
            stub.Classify(classify_request, timeout=30)
        # The writer thread counts a record once it is written (it polls its queue every
        # 50 ms), so the counter is read until it shows up, not at one instant.
        metrics = wait_for_metric(server.rest_url, LOGGED_METRIC)
    # The server stopped (SIGTERM): its logger wrote out the queue and closed the file.
    assert LOGGED_METRIC in metrics
    scan = LogScan()
    records = list(read_prediction_logs(logs, scan))
    assert scan.damaged == {}
    kinds = [r.WhichOneof("log_type") for r in records]
    assert sorted(kinds) == sorted(["predict_log"] * 3 + ["classify_log"] * 2 + ["regress_log"]), (
        kinds
    )
    for record in records:
        spec = record.log_metadata.model_spec
        assert (spec.name, spec.version.value) == ("penguin", 3)
        assert record.log_metadata.timestamp_secs > 0
    predicts = [r.predict_log for r in records if r.HasField("predict_log")]
    batch_sizes = sorted(p.request.inputs["island"].tensor_shape.dim[0].size for p in predicts)
    assert batch_sizes == [1, 2, 3]
    for p in predicts:
        assert "flipper_length_mm" not in p.request.inputs  # excluded by name
        assert "scores" in p.response.outputs
    classifies = [r.classify_log for r in records if r.HasField("classify_log")]
    assert sorted(len(c.request.input.example_list.examples) for c in classifies) == [1, 3]
    for c in classifies:
        for example in c.request.input.example_list.examples:
            assert set(example.features.feature) == {"bill_length_mm", "island"}
        assert c.response.result.classifications[0].classes
    [regress_log] = [r.regress_log for r in records if r.HasField("regress_log")]
    assert len(regress_log.response.result.regressions) == 2
    # Every request that reached a version has an outcome line (unsampled, failures too), with
    # the server's own latency; the request to the absent version reached none.
    assert len(outcome_files(logs)) == 1
    outcomes = list(read_outcomes(logs))
    assert {(o.model_name, o.version) for o in outcomes} == {("penguin", 3)}
    assert sorted((o.api, o.status) for o in outcomes) == sorted(
        [("predict", "OK")] * 3 + [("classify", "OK")] * 2 + [("regress", "OK")]
        + [("predict", "INVALID_ARGUMENT")]
    )
    assert all(o.latency_us > 0 and o.time_ms > 0 for o in outcomes)
