"""A run job as the (request, response) protos a PredictionLog holds.

Called on the request logger's writer thread, never on the serving path: the arrays a REST
(row or columnar) or gRPC request decoded to become a PredictRequest again, and the serialized
tf.Examples of a Classify/Regress request (context merged, as the model saw them) an
`example_list`. The model spec is filled in by the logger.
"""

from __future__ import annotations

import numpy as np

from serving.core.jobs import Arrays, Classifications
from serving.core.proto_codec import fill_classification_result, fill_regression_result
from serving.core.tensors import make_tensor_proto


def _example_input(holder, serialized: np.ndarray) -> None:
    examples = holder.example_list.examples
    for data in serialized.reshape(-1):
        examples.add().ParseFromString(data)


def log_protos(kind: str, inputs: Arrays, answer) -> tuple[object, object]:
    """(request, response) of a predict / classify / regress job and its answer."""
    from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

    if kind == "predict":
        request = predict_pb2.PredictRequest()
        for alias, array in inputs.items():
            make_tensor_proto(array, request.inputs[alias])
        response = predict_pb2.PredictResponse()
        for alias, array in answer.items():
            make_tensor_proto(array, response.outputs[alias])
        return request, response
    if kind == "classify":
        request = classification_pb2.ClassificationRequest()
        _example_input(request.input, inputs["inputs"])
        response = classification_pb2.ClassificationResponse()
        result: Classifications = answer
        fill_classification_result(response.result, result.classes, result.scores)
        return request, response
    if kind == "regress":
        request = regression_pb2.RegressionRequest()
        _example_input(request.input, inputs["inputs"])
        response = regression_pb2.RegressionResponse()
        fill_regression_result(response.result, answer)
        return request, response
    raise ValueError(f"Cannot log a {kind!r} request")
