"""Tensor types: TensorFlow DataType enums, numpy dtypes, and TensorProto <-> ndarray.

Strings are numpy object arrays of `bytes`. Responses fill the typed value fields (`float_val`,
`string_val`, ...), as TF Serving does by default (AsProtoField), so clients that read
`outputs["scores"].float_val` keep working. Decoding needs no TensorFlow (tf.make_ndarray's
generality cost ~20 us a tensor) and refuses what cannot be decoded safely.
"""

from __future__ import annotations

import math

import numpy as np

from beamline_serving.errors import invalid_argument

# tensorflow.DataType numbers (types.proto).
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_INT64, DT_BOOL, DT_UINT16, DT_HALF, DT_UINT32, DT_UINT64 = 9, 10, 17, 19, 22, 23

NUMPY_DTYPES: dict[int, np.dtype] = {
    DT_FLOAT: np.dtype(np.float32),
    DT_DOUBLE: np.dtype(np.float64),
    DT_INT32: np.dtype(np.int32),
    DT_UINT8: np.dtype(np.uint8),
    DT_INT16: np.dtype(np.int16),
    DT_INT8: np.dtype(np.int8),
    DT_STRING: np.dtype(object),
    DT_INT64: np.dtype(np.int64),
    DT_BOOL: np.dtype(np.bool_),
    DT_UINT16: np.dtype(np.uint16),
    DT_HALF: np.dtype(np.float16),
    DT_UINT32: np.dtype(np.uint32),
    DT_UINT64: np.dtype(np.uint64),
}

# DataTypeString(): how TensorFlow names types in messages.
TYPE_NAMES = {
    DT_FLOAT: "float",
    DT_DOUBLE: "double",
    DT_INT32: "int32",
    DT_UINT8: "uint8",
    DT_INT16: "int16",
    DT_INT8: "int8",
    DT_STRING: "string",
    DT_INT64: "int64",
    DT_BOOL: "bool",
    DT_UINT16: "uint16",
    DT_HALF: "half",
    DT_UINT32: "uint32",
    DT_UINT64: "uint64",
    14: "bfloat16",
    8: "complex64",
    18: "complex128",
    20: "resource",
    21: "variant",
}

_VALUE_FIELD = {
    DT_FLOAT: "float_val",
    DT_DOUBLE: "double_val",
    DT_INT32: "int_val",
    DT_UINT8: "int_val",
    DT_INT16: "int_val",
    DT_INT8: "int_val",
    DT_UINT16: "int_val",
    DT_STRING: "string_val",
    DT_INT64: "int64_val",
    DT_BOOL: "bool_val",
    DT_UINT32: "uint32_val",
    DT_UINT64: "uint64_val",
}


def type_name(dtype: int) -> str:
    return TYPE_NAMES.get(dtype, f"type_{dtype}")


def dtype_enum_name(dtype: int) -> str:
    """`DT_FLOAT` style name."""
    return "DT_" + type_name(dtype).upper()


_ENUM_OF_DTYPE = {dtype: enum for enum, dtype in NUMPY_DTYPES.items() if enum != DT_STRING}


def dtype_of_array(array: np.ndarray) -> int:
    """The DataType of a numpy array (object arrays are strings)."""
    enum = _ENUM_OF_DTYPE.get(array.dtype)
    if enum is not None:
        return enum
    if array.dtype == object or array.dtype.kind in "SU":
        return DT_STRING
    raise TypeError(f"unsupported output dtype {array.dtype}")


def make_tensor_proto(array: np.ndarray, proto=None):
    """A TensorProto with typed value fields (TF Serving's default response encoding), written
    into `proto` if given."""
    if proto is None:
        from tensorflow.core.framework import tensor_pb2

        proto = tensor_pb2.TensorProto()
    dtype = dtype_of_array(array)
    proto.dtype = dtype
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    flat = array.ravel()
    if dtype == DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif dtype == DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    else:
        getattr(proto, _VALUE_FIELD[dtype]).extend(flat.tolist())
    return proto


# Decoding limits: a TensorProto may declare more elements than it carries (the value fields
# repeat their last value, as tensor_util does), but only by this many bytes of padding, and no
# tensor may exceed MAX_ELEMENTS; both are checked before anything is allocated.
MAX_PADDING_BYTES = 1 << 20
MAX_ELEMENTS = 1 << 26
MAX_RANK = 32  # numpy's limit


def make_ndarray(proto) -> np.ndarray:
    """A numpy array from a TensorProto (tensor_content or the typed value fields), without
    TensorFlow. Raises INVALID_ARGUMENT for a type this server does not take, a malformed shape,
    or a declared size out of proportion to the values carried (refused before allocating)."""
    dtype = proto.dtype
    np_dtype = NUMPY_DTYPES.get(dtype)
    if np_dtype is None:
        raise invalid_argument(
            f"TensorProto of type {dtype_enum_name(dtype)} is not supported; send one of "
            f"{', '.join(dtype_enum_name(d) for d in NUMPY_DTYPES)}."
        )
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument("TensorProto has an unknown rank; give its shape.")
    shape = [d.size for d in proto.tensor_shape.dim]
    if len(shape) > MAX_RANK:
        raise invalid_argument(f"TensorProto has {len(shape)} dimensions; at most {MAX_RANK}.")
    if any(size < 0 for size in shape):
        raise invalid_argument(f"TensorProto shape {shape} has a negative dimension.")
    if math.prod(size for size in shape if size) > MAX_ELEMENTS:  # even with a 0 dimension
        raise invalid_argument(
            f"TensorProto shape {shape} is larger than the {MAX_ELEMENTS} elements accepted."
        )
    count = math.prod(shape)
    itemsize = np_dtype.itemsize
    content = proto.tensor_content
    if content and dtype != DT_STRING:
        if len(content) != count * itemsize:
            raise invalid_argument(
                f"TensorProto tensor_content holds {len(content)} bytes; shape {shape} of "
                f"{type_name(dtype)} needs {count * itemsize}."
            )
        return np.frombuffer(content, np_dtype).reshape(shape).copy()
    values = proto.half_val if dtype == DT_HALF else getattr(proto, _VALUE_FIELD[dtype])
    carried = len(values)
    if count > MAX_ELEMENTS or (count - carried) * itemsize > MAX_PADDING_BYTES:
        raise invalid_argument(
            f"TensorProto declares shape {shape} ({count} elements) but carries {carried} "
            f"value(s); at most {MAX_PADDING_BYTES} bytes of repeated values and "
            f"{MAX_ELEMENTS} elements are accepted."
        )
    if carried > count:
        raise invalid_argument(
            f"TensorProto carries {carried} values; shape {shape} holds {count}."
        )
    if dtype == DT_STRING:
        array = np.empty(count, dtype=object)
        if carried:
            array[:carried] = list(values)
            array[carried:] = values[-1]
        else:
            array[:] = b""
        return array.reshape(shape)
    if dtype == DT_HALF:
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(values, dtype=np_dtype)
    if carried == 0:
        return np.zeros(shape, np_dtype)
    if carried < count:
        flat = np.pad(flat, (0, count - carried), mode="edge")
    return flat.reshape(shape)
