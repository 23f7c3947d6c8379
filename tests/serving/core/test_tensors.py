"""TensorProto decoding (serving/core/tensors.py): exact for valid protos, INVALID_ARGUMENT for
everything else, and never an allocation out of proportion to the request."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2

from beamline_serving.core import tensors
from beamline_serving.core.tensors import NUMPY_DTYPES, make_ndarray, make_tensor_proto
from beamline_serving.errors import Code, ServingError
from tests.hypothesis_budget import examples

NUMERIC = [d for d in NUMPY_DTYPES.values() if d != np.dtype(object)]
SETTINGS = settings(max_examples=examples(300), deadline=None)


def refused(proto) -> str:
    with pytest.raises(ServingError) as info:
        make_ndarray(proto)
    assert info.value.code == Code.INVALID_ARGUMENT
    return info.value.message


def proto_of(dtype: int, shape, **fields):
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    return proto


@SETTINGS
@given(
    hnp.arrays(
        st.sampled_from(NUMERIC),
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        elements={"allow_nan": False},
    )
)
def test_value_fields_round_trip(array):
    decoded = make_ndarray(make_tensor_proto(array))
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


def _arrays_of(dtype: np.dtype):
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    if dtype == np.dtype(object):  # DT_STRING: bytes elements
        return hnp.arrays(dtype, shapes, elements=st.binary(max_size=6))
    return hnp.arrays(dtype, shapes, elements={"allow_nan": False} if dtype.kind == "f" else None)


@pytest.mark.parametrize("dtype", list(NUMPY_DTYPES.values()), ids=str)
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_dtype_agrees_with_tensorflows_own_codec(dtype, data):
    """Against TensorFlow, not our own decoder: what we encode, tf.make_ndarray reads back
    exactly (dtype, shape, values), and what tf.make_tensor_proto encodes (tensor_content for
    numbers), we decode exactly."""
    import tensorflow as tf

    array = data.draw(_arrays_of(dtype))
    ours = make_tensor_proto(array)
    expected = tf.string if dtype == np.dtype(object) else tf.dtypes.as_dtype(dtype)
    assert ours.dtype == expected.as_datatype_enum
    theirs_decoded = tf.make_ndarray(ours)
    assert theirs_decoded.shape == array.shape
    ours_decoded = make_ndarray(tf.make_tensor_proto(array))
    assert ours_decoded.shape == array.shape
    if dtype == np.dtype(object):
        np.testing.assert_array_equal(theirs_decoded.astype(bytes), array.astype(bytes))
        np.testing.assert_array_equal(ours_decoded.astype(bytes), array.astype(bytes))
        return
    assert theirs_decoded.dtype == array.dtype and ours_decoded.dtype == array.dtype
    np.testing.assert_array_equal(theirs_decoded, array)
    np.testing.assert_array_equal(ours_decoded, array)


@SETTINGS
@given(hnp.arrays(st.sampled_from(NUMERIC), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
def test_tensor_content_round_trips(array):
    enum = tensors.dtype_of_array(array)
    proto = proto_of(enum, array.shape, tensor_content=array.tobytes())
    np.testing.assert_array_equal(make_ndarray(proto), array)


@SETTINGS
@given(st.lists(st.binary(max_size=8), min_size=0, max_size=6), st.integers(0, 6))
def test_strings_and_padding_match_tensorflow(values, count):
    import tensorflow as tf

    proto = proto_of(tensors.DT_STRING, [count], string_val=values)
    if len(values) > count:
        refused(proto)
        return
    expected = tf.make_ndarray(proto)
    np.testing.assert_array_equal(make_ndarray(proto).astype(bytes), expected.astype(bytes))


@SETTINGS
@given(st.lists(st.floats(width=32, allow_nan=False), max_size=4), st.integers(0, 8))
def test_repeated_last_value_matches_tensorflow(values, count):
    import tensorflow as tf

    proto = proto_of(tensors.DT_FLOAT, [count], float_val=values)
    if len(values) > count:
        refused(proto)
        return
    np.testing.assert_array_equal(make_ndarray(proto), tf.make_ndarray(proto))


@settings(max_examples=examples(500), deadline=None)
@given(
    dtype=st.integers(0, 30),
    dims=st.lists(st.integers(-3, 2**40), max_size=40),
    unknown_rank=st.booleans(),
    floats=st.lists(st.floats(width=32), max_size=4),
    content=st.binary(max_size=24),
    strings=st.lists(st.binary(max_size=4), max_size=3),
)
def test_any_proto_decodes_or_is_invalid_argument(
    dtype, dims, unknown_rank, floats, content, strings
):
    proto = proto_of(dtype, dims, float_val=floats, tensor_content=content, string_val=strings)
    proto.tensor_shape.unknown_rank = unknown_rank
    tracemalloc.start()
    try:
        array = make_ndarray(proto)
    except ServingError as exc:
        assert exc.code == Code.INVALID_ARGUMENT
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert array.shape == tuple(dims)
    # Bounded by what the proto carries plus the padding allowance.
    assert peak <= 4 * (tensors.MAX_PADDING_BYTES + len(content)) + 1_000_000


def test_memory_amplification_is_refused_before_allocating():
    # 198 bytes on the wire declaring 10^8 floats: refused, nothing allocated.
    proto = proto_of(tensors.DT_FLOAT, [10**8], float_val=[1.0])
    tracemalloc.start()
    message = refused(proto)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "[100000000]" in message and peak < 1_000_000
    # Below the absolute maximum, the padding allowance refuses it: 1 value declared as 10^6.
    assert "(1000000 elements) but carries 1 value(s)" in refused(
        proto_of(tensors.DT_FLOAT, [10**6], float_val=[1.0])
    )
    # Bounded padding is still accepted, as TF Serving accepts it.
    assert make_ndarray(proto_of(tensors.DT_FLOAT, [1000], float_val=[2.0])).sum() == 2000.0


@pytest.mark.parametrize("dtype", [8, 14, 18, 11, 12, 13, 15, 16, 20, 21, 24, 25, 29])
def test_unsupported_dtypes_are_invalid_argument(dtype):
    assert "is not supported" in refused(proto_of(dtype, [1], float_val=[1.0]))


def test_malformed_shapes_are_invalid_argument():
    assert "negative dimension" in refused(proto_of(tensors.DT_FLOAT, [-1]))
    assert "at most 32" in refused(proto_of(tensors.DT_FLOAT, [1] * 33))
    unknown = proto_of(tensors.DT_FLOAT, [])
    unknown.tensor_shape.unknown_rank = True
    assert "unknown rank" in refused(unknown)
    assert "needs 8" in refused(proto_of(tensors.DT_FLOAT, [2], tensor_content=b"\0" * 7))
    # A scalar (no dimensions) holds one element: one value decodes, a missing one pads.
    assert make_ndarray(proto_of(tensors.DT_INT64, [], int64_val=[7])).tolist() == 7
    assert make_ndarray(proto_of(tensors.DT_FLOAT, [])).shape == ()
    assert "carries 2 values" in refused(proto_of(tensors.DT_FLOAT, [], float_val=[1.0, 2.0]))
