"""Unit tests of REST response encoding (serving/rest/json_encode.py), without a server."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from beamline_serving.errors import Code, ServingError
from beamline_serving.rest import json_decode, json_encode


def test_row_response_with_one_output_is_a_plain_list():
    body = json_encode.predict_response({"y": np.array([0.2, 1.0], np.float32)}, json_decode.ROW)
    assert body == b'{"predictions":[0.2,1.0]}'


def test_row_response_with_several_outputs_is_a_list_of_objects():
    outputs = {"y": np.array([[1, 2]], np.int64), "name_bytes": np.array([b"\x00"], object)}
    doc = json.loads(json_encode.predict_response(outputs, json_decode.ROW))
    assert doc == {"predictions": [{"y": [1, 2], "name_bytes": {"b64": "AA=="}}]}


def test_columnar_response():
    outputs = {"y": np.array([[1.5]], np.float32), "s": np.array([b"a"], object)}
    doc = json.loads(json_encode.predict_response(outputs, json_decode.COLUMNAR))
    assert doc == {"outputs": {"y": [[1.5]], "s": ["a"]}}


def test_non_finite_floats_print_as_tokens():
    outputs = {"y": np.array([np.nan, np.inf, -np.inf, 0.1], np.float32)}
    body = json_encode.predict_response(outputs, json_decode.ROW)
    assert body == b'{"predictions":[NaN,Infinity,-Infinity,0.1]}'


def test_inconsistent_batch_sizes_are_refused():
    outputs = {"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32)}
    with pytest.raises(ServingError) as info:
        json_encode.predict_response(outputs, json_decode.ROW)
    assert info.value.code == Code.INVALID_ARGUMENT
    assert "inconsistent batch size: 3 expecting: 2" in info.value.message


def test_classify_and_regress_responses():
    classes = np.array([[b"a", b"b"]], object)
    scores = np.array([[0.25, 0.75]], np.float32)
    assert json.loads(json_encode.classify_response(classes, scores)) == {
        "results": [[["a", 0.25], ["b", 0.75]]]
    }
    assert json_encode.regress_response(np.array([[0.5], [1.5]], np.float32)) == (
        b'{"results":[0.5,1.5]}'
    )


def test_error_body_always_encodes():
    assert orjson.loads(json_encode.error_body("plain")) == {"error": "plain"}
    # A lone surrogate (from a request's own text) must not make the error answer fail.
    doc = orjson.loads(json_encode.error_body('bad key "\ud800" in request'))
    assert doc["error"].startswith('bad key "') and "\\ud800" in doc["error"]
