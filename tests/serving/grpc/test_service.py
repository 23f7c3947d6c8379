"""gRPC API through the real tensorflow_serving.apis stubs."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)

from tests.serving.support import CLASS_NAMES, example_rows, make_example

ROWS = example_rows()
TIMEOUT = 30


def predict_request(name="penguin", signature="", version=None, label=None, rows=ROWS):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["bill_length_mm"].CopyFrom(
        tf.make_tensor_proto([r["bill_length_mm"] for r in rows], tf.float32)
    )
    request.inputs["flipper_length_mm"].CopyFrom(
        tf.make_tensor_proto([r["flipper_length_mm"] for r in rows], tf.int64)
    )
    request.inputs["island"].CopyFrom(tf.make_tensor_proto([r["island"] for r in rows]))
    return request


def error_of(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=TIMEOUT)
    return info.value.code(), info.value.details()


def test_predict(prediction_stub):
    response = prediction_stub.Predict(predict_request(), timeout=TIMEOUT)
    assert response.model_spec.name == "penguin"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"
    scores = tf.make_ndarray(response.outputs["scores"])
    assert scores.shape == (3, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    # Typed value fields, as TF Serving fills them: clients reading float_val keep working.
    assert len(response.outputs["scores"].float_val) == 9
    assert list(response.outputs["model_version"].int64_val) == [2, 2, 2]


@pytest.mark.parametrize(("version", "label", "expected"), [(1, None, 1), (None, "canary", 2)])
def test_predict_version_and_label(prediction_stub, version, label, expected):
    response = prediction_stub.Predict(
        predict_request(version=version, label=label), timeout=TIMEOUT
    )
    assert response.model_spec.version.value == expected
    assert list(response.outputs["model_version"].int64_val) == [expected] * 3


def test_predict_output_filter(prediction_stub):
    request = predict_request()
    request.output_filter.append("model_version")
    response = prediction_stub.Predict(request, timeout=TIMEOUT)
    assert list(response.outputs) == ["model_version"]
    request.output_filter.append("nope")
    code, details = error_of(prediction_stub.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("output tensor alias not found in signature: nope")


def test_predict_errors(prediction_stub):
    code, details = error_of(prediction_stub.Predict, predict_request(name="nope"))
    assert (code, details) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )
    code, details = error_of(prediction_stub.Predict, predict_request(version=9))
    assert (code, details) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(penguin, 9)",
    )
    code, details = error_of(prediction_stub.Predict, predict_request(signature="x"))
    assert (code, details) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "x" not found.',
    )
    code, details = error_of(prediction_stub.Predict, predict_request(label="nope"))
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: nope",
    )
    request = predict_request()
    del request.inputs["island"]
    code, details = error_of(prediction_stub.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.endswith("Sent extra: {}. Missing but required: {island}.")
    request = predict_request()
    request.inputs["island"].CopyFrom(tf.make_tensor_proto([1.0, 2.0, 3.0], tf.float32))
    code, details = error_of(prediction_stub.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("Expects arg[2] to be string but float is provided")
    code, details = error_of(prediction_stub.Predict, predict_pb2.PredictRequest())
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")


def test_classify_and_regress(prediction_stub):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "penguin"
    request.model_spec.signature_name = "classification"
    for row in ROWS:
        request.input.example_list.examples.add().CopyFrom(make_example(row))
    response = prediction_stub.Classify(request, timeout=TIMEOUT)
    assert response.model_spec.version.value == 2
    assert len(response.result.classifications) == 3
    classes = response.result.classifications[0].classes
    assert [c.label for c in classes] == list(CLASS_NAMES)
    assert sum(c.score for c in classes) == pytest.approx(1.0, abs=1e-5)

    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = "penguin"
    regress.model_spec.signature_name = "regression"
    regress.model_spec.version.value = 1
    regress.input.example_list.examples.add().CopyFrom(make_example({"bill_length_mm": 2.0}))
    response = prediction_stub.Regress(regress, timeout=TIMEOUT)
    assert [r.value for r in response.result.regressions] == [5.0]

    empty = classification_pb2.ClassificationRequest()
    empty.model_spec.name = "penguin"
    empty.model_spec.signature_name = "classification"
    assert error_of(prediction_stub.Classify, empty) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Input is empty.",
    )


def test_multi_inference(prediction_stub):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (
        ("classification", "tensorflow/serving/classify"),
        ("regression", "tensorflow/serving/regress"),
    ):
        task = request.tasks.add()
        task.model_spec.name = "penguin"
        task.model_spec.signature_name = signature
        task.method_name = method
    request.input.example_list.examples.add().CopyFrom(make_example(ROWS[0]))
    response = prediction_stub.MultiInference(request, timeout=TIMEOUT)
    assert len(response.results) == 2
    assert len(response.results[0].classification_result.classifications[0].classes) == 3
    expected = 2 * ROWS[0]["bill_length_mm"] + 2
    assert response.results[1].regression_result.regressions[0].value == pytest.approx(expected)


def test_get_model_metadata(prediction_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "penguin"
    request.model_spec.version_label = "stable"
    request.metadata_field.append("signature_def")
    response = prediction_stub.GetModelMetadata(request, timeout=TIMEOUT)
    assert response.model_spec.name == "penguin"
    assert response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert signature_map.signature_def["classification"].method_name == (
        "tensorflow/serving/classify"
    )
    request.metadata_field[:] = ["signature_def", "other"]
    assert error_of(prediction_stub.GetModelMetadata, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Metadata field other is not supported",
    )


def test_get_model_status(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "penguin"
    response = model_stub.GetModelStatus(request, timeout=TIMEOUT)
    assert [s.version for s in response.model_version_status] == [2, 1]
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert all(s.state == available for s in response.model_version_status)
    request.model_spec.name = "nope"
    assert error_of(model_stub.GetModelStatus, request) == (
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nope",
    )


@pytest.fixture
def original_config(model_stub, prediction_stub, model_dir, model_config_text):
    """The session server's own model config; whatever the test reloads, the finalizer puts
    it back and checks that no model the test added is left for later tests."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    original = text_format.Parse(
        model_config_text(model_dir / "models"), model_server_config_pb2.ModelServerConfig()
    )
    yield original
    restore = model_management_pb2.ReloadConfigRequest()
    restore.config.CopyFrom(original)
    response = model_stub.HandleReloadConfigRequest(restore, timeout=120)
    assert response.status.error_code == 0, response.status.error_message
    code = error_of(prediction_stub.Predict, predict_request(name="twin"))[0]
    assert code == grpc.StatusCode.NOT_FOUND, "the reloaded test model is still served"


def test_reload_config_adds_and_removes_models(
    model_stub, prediction_stub, model_dir, http, main_server, model_config_text, original_config
):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    models = model_dir / "models"
    original = original_config
    extended = text_format.Parse(
        model_config_text(models, f'config {{ name: "twin" base_path: "{models / "penguin"}" }}'),
        model_server_config_pb2.ModelServerConfig(),
    )
    reload_request = model_management_pb2.ReloadConfigRequest()
    reload_request.config.CopyFrom(extended)
    response = model_stub.HandleReloadConfigRequest(reload_request, timeout=120)
    assert response.status.error_code == 0
    twin = prediction_stub.Predict(predict_request(name="twin"), timeout=TIMEOUT)
    assert twin.model_spec.name == "twin"

    bad = model_management_pb2.ReloadConfigRequest()
    bad.config.CopyFrom(extended)
    bad.config.model_config_list.config[0].version_labels["broken"] = 99
    code, details = error_of(model_stub.HandleReloadConfigRequest, bad)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details == (
        "Request to assign label to version 99 of model penguin, which is not currently "
        "available for inference"
    )

    reload_request.config.CopyFrom(original)
    model_stub.HandleReloadConfigRequest(reload_request, timeout=120)
    assert error_of(prediction_stub.Predict, predict_request(name="twin"))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    assert http.get(f"{main_server.rest_url}/v1/models/penguin/labels/stable").status_code == 200


@pytest.mark.parametrize("where", ["victim/requests", "logs/../victim/requests"])
def test_a_reload_cannot_log_requests_to_a_place_of_its_choosing(
    model_stub, prediction_stub, model_dir, model_config_text, original_config, tmp_path, where
):
    """The session server has no --request_log_dir: a reload's logging_config may not make it
    create directories and files (outside paths, `..`), and the refused reload changes
    nothing, not even the models it lists."""
    from google.protobuf import text_format

    models = model_dir / "models"
    prefix = f"{tmp_path}/{where}"
    logging = (
        f"logging_config {{ log_collector_config {{ type: 'tfrecord' filename_prefix: "
        f"'{prefix}' }} }}"
    )
    twin = f'config {{ name: "twin" base_path: "{models / "penguin"}" {logging} }}'
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(model_config_text(models, twin), request.config)
    code, details = error_of(model_stub.HandleReloadConfigRequest, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "filename_prefix" in details and "--request_log_dir" in details
    assert list(tmp_path.iterdir()) == []
    assert error_of(prediction_stub.Predict, predict_request(name="twin"))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    assert prediction_stub.Predict(predict_request(), timeout=TIMEOUT).model_spec.name == "penguin"


# -- hostile input: INVALID_ARGUMENT, never UNKNOWN or INTERNAL -------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "/tensorflow.serving.PredictionService/Predict",
        "/tensorflow.serving.PredictionService/Classify",
        "/tensorflow.serving.ModelService/GetModelStatus",
    ],
)
@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x08" + b"\xff" * 11])
def test_a_message_that_does_not_parse_is_invalid_argument(grpc_channel, method, raw):
    call = grpc_channel.unary_unary(method)  # raw bytes in and out
    with pytest.raises(grpc.RpcError) as info:
        call(raw, timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid tensorflow.serving." in info.value.details()


@pytest.mark.parametrize("dtype", [8, 14, 18, 11, 12, 13, 15, 16, 24, 25, 29])
def test_unsupported_input_dtypes_are_invalid_argument(prediction_stub, dtype):
    request = predict_request()
    tensor = request.inputs["bill_length_mm"]
    tensor.Clear()
    tensor.dtype = dtype
    tensor.tensor_shape.dim.add().size = 1
    tensor.tensor_content = b"\0" * 16
    with pytest.raises(grpc.RpcError) as info:
        prediction_stub.Predict(request, timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not supported" in info.value.details()


def test_a_small_request_declaring_a_huge_tensor_is_refused(prediction_stub, http, main_server):
    request = predict_request()
    tensor = request.inputs["bill_length_mm"]
    tensor.Clear()
    tensor.dtype = tf.float32.as_datatype_enum
    tensor.tensor_shape.dim.add().size = 10**8
    tensor.float_val.append(1.0)
    assert request.ByteSize() < 400
    with pytest.raises(grpc.RpcError) as info:
        prediction_stub.Predict(request, timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "[100000000]" in info.value.details()
    assert prediction_stub.Predict(predict_request(), timeout=TIMEOUT).outputs["scores"].float_val
