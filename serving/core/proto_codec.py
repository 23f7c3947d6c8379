"""tensorflow_serving.apis protos <-> the data plane's arrays (used by gRPC and warm-up replay)."""

from __future__ import annotations

import numpy as np

from beamline_serving.core.tensors import make_ndarray, make_tensor_proto
from beamline_serving.errors import bad_request, invalid_argument


def request_arrays(tensor_map) -> dict[str, np.ndarray]:
    """PredictRequest.inputs as numpy arrays."""
    arrays = {}
    for alias, proto in tensor_map.items():
        try:
            arrays[alias] = make_ndarray(proto)
        except Exception as exc:  # a malformed TensorProto is the client's error
            raise invalid_argument(
                f"Input {alias!r} is not a valid TensorProto: {bad_request(exc).message}"
            ) from None
    return arrays


def serialized_examples(request_input) -> tuple[np.ndarray, list]:
    """The serialized tf.Examples of a tensorflow.serving.Input, and the Example messages.

    With a context, each example is serialized as context + example, exactly as TF Serving does
    (parsing that concatenation merges the two feature maps, the example winning).
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = list(request_input.example_list.examples)
        serialized = [e.SerializeToString() for e in examples]
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        context = with_context.context.SerializeToString()
        examples = list(with_context.examples)
        serialized = [context + e.SerializeToString() for e in examples]
    else:
        examples, serialized = [], []
    if not serialized:
        raise invalid_argument("Input is empty.")
    array = np.empty(len(serialized), dtype=object)
    array[:] = serialized
    return array, examples


def merged_examples(serialized: np.ndarray) -> list:
    """Examples as the model sees them (context merged), for schema checks."""
    from tensorflow.core.example import example_pb2

    return [example_pb2.Example.FromString(s) for s in serialized]


def fill_predict_response(response, name: str, version: int, signature: str, outputs) -> None:
    response.model_spec.name = name
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature
    for alias, array in outputs.items():
        make_tensor_proto(array, response.outputs[alias])


def fill_classification_result(result, classes: np.ndarray | None, scores) -> None:
    reference = classes if classes is not None else scores
    for i in range(reference.shape[0]):
        classifications = result.classifications.add()
        for c in range(reference.shape[1]):
            cls = classifications.classes.add()
            if classes is not None:
                label = classes[i, c]
                cls.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else label
            if scores is not None:
                cls.score = float(scores[i, c])


def fill_regression_result(result, values: np.ndarray) -> None:
    for value in values.reshape(-1).tolist():
        result.regressions.add().value = value


def fill_model_spec(spec, name: str, version: int, signature: str) -> None:
    spec.name = name
    spec.version.value = version
    spec.signature_name = signature
