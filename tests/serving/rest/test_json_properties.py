"""Property tests (Hypothesis) of the REST JSON codec: any body decodes or is refused with
INVALID_ARGUMENT, never another error; valid documents round-trip; every answer encodes."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from beamline_serving.core.servable import TensorInfo
from beamline_serving.core.tensors import DT_FLOAT, DT_INT64, DT_STRING
from beamline_serving.errors import Code, ServingError, request_errors
from beamline_serving.rest import json_decode, json_encode
from tests.hypothesis_budget import examples

SETTINGS = settings(max_examples=examples(400), deadline=None)
INFOS = [
    {"x": TensorInfo("x", DT_FLOAT, (-1,))},
    {"x": TensorInfo("x", DT_FLOAT, None), "s": TensorInfo("s", DT_STRING, (-1,))},
    {"i": TensorInfo("i", DT_INT64, (-1, 2))},
]

# Text as hostile clients write it: any code point, lone surrogates included.
TEXT = st.text(st.one_of(st.characters(), st.sampled_from(["\ud800", "\udfff", "\x00"])))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.builds(lambda t: {"b64": t}, TEXT),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=30,
)
KEYS = st.sampled_from(["instances", "inputs", "examples", "context", "signature_name", "x"])
DOCUMENTS = st.dictionaries(KEYS, JSON_VALUES, max_size=4)


def body_of(doc) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()  # escapes lone surrogates as \ud800


def decode(body: bytes, infos) -> None:
    """The REST adapter's decoding steps, inside its one guard."""
    with request_errors():
        doc = json_decode.parse_json(body)
        json_decode.signature_name(doc)
        try:
            json_decode.predict_inputs(doc, infos)
        finally:
            json_decode.classify_regress_input(doc)


def assert_refused_or_decoded(body: bytes, infos) -> None:
    try:
        decode(body, infos)
    except ServingError as exc:
        assert exc.code == Code.INVALID_ARGUMENT, exc
        assert orjson.loads(json_encode.error_body(exc.message))["error"]


@SETTINGS
@given(DOCUMENTS, st.sampled_from(INFOS))
def test_any_document_decodes_or_is_invalid_argument(doc, infos):
    assert_refused_or_decoded(body_of(doc), infos)


@SETTINGS
@given(st.binary(max_size=200), st.sampled_from(INFOS))
def test_any_bytes_decode_or_are_invalid_argument(body, infos):
    assert_refused_or_decoded(body, infos)


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["[", '{"a":', '{"instances": [']))
def test_any_nesting_depth_is_invalid_argument_or_decoded(depth, opener):
    closer = {"[": "]", '{"a":': "}", '{"instances": [': "]}"}[opener]
    inner = "[" * depth + "1" + "]" * depth
    body = ('{"instances": ' + inner + "}" if opener == "[" else opener + inner + closer).encode()
    assert_refused_or_decoded(body, INFOS[0])


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(4000, 6000), st.sampled_from(["", "-"]))
def test_huge_integer_literals_are_invalid_argument(digits, sign):
    body = ('{"instances": [' + sign + "1" * digits + "]}").encode()
    assert_refused_or_decoded(body, INFOS[0])


@SETTINGS
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(0, 3)),
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
    )
)
def test_row_requests_round_trip(array):
    doc = {"instances": array.tolist()}
    infos = {"x": TensorInfo("x", DT_FLOAT, (-1, -1))}
    arrays, fmt = json_decode.predict_inputs(json_decode.parse_json(body_of(doc)), infos)
    np.testing.assert_array_equal(arrays["x"], array)
    answer = json.loads(json_encode.predict_response({"y": arrays["x"]}, fmt))
    np.testing.assert_array_equal(
        np.array(answer["predictions"], np.float32).reshape(array.shape), array
    )


@SETTINGS
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)))
def test_float_answers_print_shortest_and_parse_back(array):
    body = json_encode.predict_response({"y": array}, json_decode.COLUMNAR)
    parsed = np.array(json.loads(body)["outputs"], dtype=np.float32)
    np.testing.assert_array_equal(parsed, array)  # NaN == NaN for assert_array_equal
    for value in json.loads(body, parse_constant=float)["outputs"] if array.ndim == 1 else []:
        if math.isfinite(value):
            assert len(repr(value)) <= len(repr(float(np.float64(np.float32(value))))) + 1


@SETTINGS
@given(TEXT)
def test_error_bodies_always_encode(message):
    assert isinstance(orjson.loads(json_encode.error_body(message))["error"], str)
