"""Hand-encoded log records parse as the protos they claim to be, with TensorFlow's own reader."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2

from beamline_serving.core.jobs import Classifications
from beamline_serving.core.log_encoding import log_protos, tensor_bytes


@pytest.mark.parametrize(
    "array",
    [
        np.array([1.5, -2.0], np.float32),
        np.arange(6, dtype=np.int64).reshape(2, 3),
        np.arange(6, dtype=np.float64).reshape(3, 2).T,  # not C-contiguous
        np.array(7, np.int32),  # a scalar
        np.array([True, False]),
        np.array([b"a", b"", b"\xff" * 300], dtype=object),
        np.zeros((0, 4), np.float32),
    ],
)
def test_tensor_bytes_round_trip_through_tensorflow(array):
    decoded = tf.make_ndarray(tensor_pb2.TensorProto.FromString(tensor_bytes(array)))
    assert decoded.shape == array.shape
    assert decoded.tolist() == array.tolist()


def test_predict_and_classify_records_with_exclusions():
    inputs = {"x": np.array([[1.0, 2.0]], np.float32), "ssn": np.array([b"1"], dtype=object)}
    outputs = {"y": np.array([3.0], np.float32), "ssn_echo": np.array([b"1"], dtype=object)}
    request, response = log_protos("predict", inputs, outputs, frozenset({"ssn", "ssn_echo"}))
    parsed = predict_pb2.PredictRequest.FromString(request)
    assert set(parsed.inputs) == {"x"}
    assert tf.make_ndarray(parsed.inputs["x"]).tolist() == [[1.0, 2.0]]
    assert set(predict_pb2.PredictResponse.FromString(response).outputs) == {"y"}

    example = tf.train.Example()
    example.features.feature["a"].float_list.value.append(1.0)
    example.features.feature["ssn"].bytes_list.value.append(b"1")
    serialized = np.array([example.SerializeToString()] * 2, dtype=object)
    answer = Classifications(
        np.array([[b"k", b"j"]] * 2, dtype=object), np.ones((2, 2), np.float32)
    )
    request, response = log_protos("classify", {"inputs": serialized}, answer, frozenset({"ssn"}))
    parsed = classification_pb2.ClassificationRequest.FromString(request)
    examples = parsed.input.example_list.examples
    assert len(examples) == 2 and all(set(e.features.feature) == {"a"} for e in examples)
    result = classification_pb2.ClassificationResponse.FromString(response).result
    assert [c.label for c in result.classifications[1].classes] == ["k", "j"]
