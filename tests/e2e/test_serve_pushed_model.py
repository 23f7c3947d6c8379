"""The model the penguin pipeline pushed, served by `beamline serve`, queried like TF Serving."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from beamline_pipelines.penguin import SAMPLE_INSTANCE
from tests.serving.support import make_example, running_server


@pytest.fixture(scope="module")
def server(penguin_run, tmp_path_factory):
    with running_server(
        model_name="penguin",
        model_base_path=str(penguin_run.layout.serving_dir("penguin")),
        log_dir=tmp_path_factory.mktemp("serve_logs"),
    ) as srv:
        yield srv


def _pushed_version(penguin_run) -> str:
    [version] = [p.name for p in penguin_run.layout.serving_dir("penguin").iterdir()]
    return version


def test_status_shows_the_pushed_version_available(server, penguin_run):
    body = requests.get(f"{server.rest_url}/v1/models/penguin", timeout=10).json()
    assert body["model_version_status"][0]["version"] == _pushed_version(penguin_run)
    assert body["model_version_status"][0]["state"] == "AVAILABLE"


def test_rest_predict_with_raw_features_returns_class_scores(server):
    gentoo_like = dict(SAMPLE_INSTANCE)
    adelie_like = dict(
        SAMPLE_INSTANCE,
        island="Torgersen",
        bill_length_mm=38.9,
        bill_depth_mm=18.6,
        flipper_length_mm=186,
        body_mass_g=3650,
        sex="male",
    )
    response = requests.post(
        f"{server.rest_url}/v1/models/penguin:predict",
        json={"instances": [gentoo_like, adelie_like]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    best = []
    for p in predictions:
        assert abs(sum(p["scores"]) - 1.0) < 1e-4
        best.append(p["classes"][int(np.argmax(p["scores"]))])
    assert best == ["Gentoo", "Adelie"]


def test_rest_classify_with_examples(server):
    example = {k: v for k, v in SAMPLE_INSTANCE.items()}
    response = requests.post(
        f"{server.rest_url}/v1/models/penguin:classify",
        json={"signature_name": "classification", "examples": [example]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    label, score = max(result, key=lambda pair: pair[1])
    assert label == "Gentoo" and score > 0.5


def test_rest_predict_missing_feature_is_a_400_naming_it(server):
    instance = {k: v for k, v in SAMPLE_INSTANCE.items() if k != "island"}
    response = requests.post(
        f"{server.rest_url}/v1/models/penguin:predict", json={"instances": [instance]}, timeout=30
    )
    assert response.status_code == 400
    assert "island" in response.json()["error"]


def test_grpc_predict_and_classify(server):
    channel = grpc.insecure_channel(server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "penguin"
    dtypes = {"flipper_length_mm": tf.int64, "body_mass_g": tf.int64}
    for name, value in SAMPLE_INSTANCE.items():
        dtype = dtypes.get(name, tf.string if isinstance(value, str) else tf.float32)
        request.inputs[name].CopyFrom(tf.make_tensor_proto([value], dtype))
    response = stub.Predict(request, timeout=30)
    scores = tf.make_ndarray(response.outputs["scores"])
    classes = tf.make_ndarray(response.outputs["classes"]).astype(str)
    assert classes[0][scores[0].argmax()] == "Gentoo"

    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "penguin"
    classify.model_spec.signature_name = "classification"
    classify.input.example_list.examples.add().CopyFrom(make_example(SAMPLE_INSTANCE))
    result = stub.Classify(classify, timeout=30)
    best = max(result.result.classifications[0].classes, key=lambda c: c.score)
    assert best.label == "Gentoo"
    channel.close()
