"""Unit tests of REST request decoding (serving/rest/json_decode.py), without a server."""

from __future__ import annotations

import numpy as np
import pytest

from beamline_serving.core.servable import TensorInfo
from beamline_serving.core.tensors import DT_BOOL, DT_FLOAT, DT_INT32, DT_INT64, DT_STRING
from beamline_serving.errors import Code, ServingError
from beamline_serving.rest import json_decode

FLOAT_VEC = {"x": TensorInfo("x", DT_FLOAT, (-1, 2))}
TWO_INPUTS = {"a": TensorInfo("a", DT_FLOAT, (-1,)), "s": TensorInfo("s", DT_STRING, (-1,))}


def refused(call, *args) -> str:
    with pytest.raises(ServingError) as info:
        call(*args)
    assert info.value.code == Code.INVALID_ARGUMENT, info.value
    return info.value.message


def test_parse_json_accepts_tf_serving_extras():
    assert json_decode.parse_json(b'{"a": NaN} trailing') == {
        "a": pytest.approx(float("nan"), nan_ok=True)
    }
    assert json_decode.parse_json(b'  {"a": 1}') == {"a": 1}


def test_large_bodies_take_the_slow_lenient_parser_only_for_nan_or_infinity():
    pad = b" " * json_decode.LENIENT_RETRY_MAX_BYTES
    # Trailing bytes: tolerated in a small body (the lenient parser), refused in a large one
    # from orjson's error alone rather than parsed a second, slow time.
    assert json_decode.parse_json(b'{"a": 1} x') == {"a": 1}
    assert refused(json_decode.parse_json, b'{"a": 1}' + pad + b"x").startswith(
        "JSON Parse error: "
    )
    # NaN and Infinity are TF Serving's JSON whatever the size.
    doc = json_decode.parse_json(b'{"a": [NaN, -Infinity]' + pad + b"}")
    assert np.isnan(doc["a"][0]) and doc["a"][1] == float("-inf")


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "The document is empty"),
        (b"   ", "The document is empty"),
        (b"[1, 2]", "Is not object"),
        (b'{"a": }', "Invalid value."),
        (b'{"a": 1e999}', "Number too big to be stored in double"),
        (b'{"a": "\xff"}', "Invalid encoding in string"),
    ],
)
def test_parse_json_errors(body, message):
    assert message in refused(json_decode.parse_json, body)


def test_row_format_objects_and_plain_lists():
    arrays, fmt = json_decode.predict_inputs(
        {"instances": [{"a": 1.5, "s": "x"}, {"a": 2, "s": {"b64": "eQ=="}}]}, TWO_INPUTS
    )
    assert fmt == json_decode.ROW
    assert arrays["a"].dtype == np.float32 and arrays["a"].tolist() == [1.5, 2.0]
    assert arrays["s"].tolist() == [b"x", b"y"]
    arrays, _ = json_decode.predict_inputs({"instances": [[1, 2], [3, 4]]}, FLOAT_VEC)
    assert arrays["x"].shape == (2, 2)


def test_columnar_format():
    arrays, fmt = json_decode.predict_inputs({"inputs": {"a": [1.0], "s": ["z"]}}, TWO_INPUTS)
    assert fmt == json_decode.COLUMNAR
    assert arrays["s"].tolist() == [b"z"]
    arrays, _ = json_decode.predict_inputs({"inputs": [[1, 2]]}, FLOAT_VEC)
    assert arrays["x"].tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    "doc, infos, message",
    [
        ({}, FLOAT_VEC, "Missing 'inputs' or 'instances' key"),
        ({"instances": [], "inputs": []}, FLOAT_VEC, "expecting only one of"),
        ({"instances": []}, FLOAT_VEC, "No values in 'instances' array"),
        ({"instances": [[1, 2], [3]]}, FLOAT_VEC, "Expecting tensor size: 2 but got: 1"),
        ({"instances": [["a", 2]]}, FLOAT_VEC, "is not of expected type: float"),
        ({"instances": [2**31]}, {"i": TensorInfo("i", DT_INT32, (-1,))}, "int32"),
        ({"instances": [1]}, {"b": TensorInfo("b", DT_BOOL, (-1,))}, "Type: Number"),
        ({"instances": [{"a": 1.0}]}, TWO_INPUTS, "keys must be equal to: a,s"),
        ({"inputs": {"a": [1.0]}}, TWO_INPUTS, "Missing named input: s"),
        ({"instances": [{"b64": "!!"}]}, {"s": TensorInfo("s", DT_STRING, (-1,))}, "base64"),
    ],
)
def test_predict_input_errors(doc, infos, message):
    assert message in refused(json_decode.predict_inputs, doc, infos)


def test_int64_range_is_exact():
    infos = {"i": TensorInfo("i", DT_INT64, (-1,))}
    arrays, _ = json_decode.predict_inputs({"instances": [2**63 - 1]}, infos)
    assert arrays["i"].tolist() == [2**63 - 1]
    assert "int64" in refused(json_decode.predict_inputs, {"instances": [2**63]}, infos)


def test_signature_name_must_be_a_string():
    assert json_decode.signature_name({"signature_name": "s"}) == "s"
    assert "must be a string" in refused(json_decode.signature_name, {"signature_name": 1})


def test_classify_regress_input_with_context():
    request_input = json_decode.classify_regress_input(
        {"context": {"c": 1}, "examples": [{"f": [1.5, 2.5], "s": "x", "b": True}]}
    )
    with_context = request_input.example_list_with_context
    assert with_context.context.features.feature["c"].int64_list.value == [1]
    feature = with_context.examples[0].features.feature
    assert list(feature["f"].float_list.value) == [1.5, 2.5]
    assert feature["s"].bytes_list.value == [b"x"]
    assert feature["b"].int64_list.value == [1]


@pytest.mark.parametrize(
    "doc, message",
    [
        ({}, "key 'examples' is expected"),
        ({"examples": {}}, "Expecting 'examples' value to be an list/array"),
        ({"examples": []}, "'examples' value is an empty array"),
        ({"examples": [1]}, "Example must be JSON object"),
        ({"examples": [{"f": [1, "a"]}]}, "expecting type: int64"),
        ({"examples": [{"f": None}]}, "unexpected JSON type: Null"),
        ({"examples": [{"f": 2**64}]}, "Only int64_t is supported"),
    ],
)
def test_classify_regress_input_errors(doc, message):
    assert message in refused(json_decode.classify_regress_input, doc)


def test_debug_string_is_cut_off():
    text = json_decode.debug_string({"k": list(range(10_000))})
    assert text.startswith('{\n    "k": [0, 1, 2') and len(text) < 300
