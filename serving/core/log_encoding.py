"""A run job as the serialized (request, response) a PredictionLog holds.

Called on the request logger's writer thread, never on the serving path. The arrays a REST
(row or columnar) or gRPC Predict decoded to become a PredictRequest again; the serialized
tf.Examples of a Classify/Regress request (context merged, as the model saw them) an
`example_list`. Predict requests and example lists are written straight to wire bytes
(serving/request_log/wire.py): the protobuf API costs ~0.3 ms a record, this a few microseconds.
Names in `exclude` (inputs, example features, outputs) are left out. The model spec is the
logger's to add.
"""

from __future__ import annotations

import sys

import numpy as np

from beamline_serving.core.jobs import Arrays, Classifications
from beamline_serving.core.proto_codec import fill_classification_result, fill_regression_result
from beamline_serving.core.tensors import DT_STRING, dtype_of_array
from beamline_serving.request_log.wire import field_bytes, field_varint

# TensorProto: dtype 1, tensor_shape 2 {dim 2 {size 1}}, tensor_content 4, string_val 8.
# PredictRequest.inputs 2 / PredictResponse.outputs 1: map entries {key 1, value 2}.


_LITTLE = sys.byteorder == "little"
_HEADERS: dict[tuple, bytes] = {}  # (numpy dtype, shape) -> dtype and tensor_shape fields


def _header(array: np.ndarray) -> tuple[int, bytes]:
    key = (array.dtype, array.shape)
    found = _HEADERS.get(key)
    dtype = dtype_of_array(array)
    if found is None:
        shape = b"".join(field_bytes(2, field_varint(1, size)) for size in array.shape)
        found = field_varint(1, dtype) + field_bytes(2, shape)
        if len(_HEADERS) < 4096:  # requests come in a few shapes; never grow without bound
            _HEADERS[key] = found
    return dtype, found


def tensor_bytes(array: np.ndarray) -> bytes:
    """A serialized TensorProto: numbers as tensor_content (little-endian, C order), strings as
    string_val."""
    dtype, header = _header(array)
    parts = [header]
    if dtype == DT_STRING:
        parts += [
            field_bytes(8, v if isinstance(v, bytes) else str(v).encode()) for v in array.ravel()
        ]
    else:
        parts.append(
            field_bytes(
                4,
                array.tobytes()  # C order; tensor_content is little-endian
                if array.dtype.byteorder == "<" or (array.dtype.byteorder in "=|" and _LITTLE)
                else array.astype(array.dtype.newbyteorder("<")).tobytes(),
            )
        )
    return b"".join(parts)


_KEYS: dict[str, bytes] = {}  # alias -> its map-entry key field


def _key(alias: str) -> bytes:
    found = _KEYS.get(alias)
    if found is None:
        found = field_bytes(1, alias.encode())
        if len(_KEYS) < 4096:
            _KEYS[alias] = found
    return found


def tensor_map_bytes(number: int, arrays: Arrays, exclude: frozenset[str]) -> bytes:
    return b"".join(
        field_bytes(number, _key(alias) + field_bytes(2, tensor_bytes(array)))
        for alias, array in arrays.items()
        if alias not in exclude
    )


def _example_list(serialized: np.ndarray, exclude: frozenset[str]) -> bytes:
    """A serialized tensorflow.serving.Input {example_list (1) {examples (1)}}."""
    examples = list(serialized.reshape(-1))
    if exclude:
        from tensorflow.core.example import example_pb2

        kept = []
        for data in examples:
            example = example_pb2.Example.FromString(data)
            for name in exclude & set(example.features.feature.keys()):
                del example.features.feature[name]
            kept.append(example.SerializeToString())
        examples = kept
    return field_bytes(1, b"".join(field_bytes(1, e) for e in examples))


def log_protos(kind: str, inputs: Arrays, answer, exclude: frozenset[str]) -> tuple[bytes, bytes]:
    """(request, response) wire bytes of a predict / classify / regress job and its answer."""
    if kind == "predict":
        return tensor_map_bytes(2, inputs, exclude), tensor_map_bytes(1, answer, exclude)
    if kind == "classify":
        from tensorflow_serving.apis import classification_pb2

        response = classification_pb2.ClassificationResponse()
        result: Classifications = answer
        fill_classification_result(response.result, result.classes, result.scores)
        request = field_bytes(2, _example_list(inputs["inputs"], exclude))
        return request, response.SerializeToString()
    if kind == "regress":
        from tensorflow_serving.apis import regression_pb2

        response = regression_pb2.RegressionResponse()
        fill_regression_result(response.result, answer)
        request = field_bytes(2, _example_list(inputs["inputs"], exclude))
        return request, response.SerializeToString()
    raise ValueError(f"Cannot log a {kind!r} request")
