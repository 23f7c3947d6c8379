"""REST API: every route of the contract, response shapes, and the contract's error cases."""

from __future__ import annotations

import base64

import pytest

from tests.serving.support import CLASS_NAMES, example_rows

ROWS = example_rows()


def url(server, path: str) -> str:
    return f"{server.rest_url}{path}"


def post(http, server, path: str, body):
    if isinstance(body, (bytes, str)):
        return http.post(url(server, path), data=body)
    return http.post(url(server, path), json=body)


# -- status ---------------------------------------------------------------------------------


def test_status_lists_every_version_newest_first(http, main_server):
    resp = http.get(url(main_server, "/v1/models/penguin"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {
        "model_version_status": [
            {
                "version": "2",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
        ]
    }


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("/v1/models/penguin/versions/1", "1"),
        ("/v1/models/penguin/labels/stable", "1"),
        ("/v1/models/penguin/labels/canary", "2"),
        ("/V1/MODELS/penguin/VERSIONS/2", "2"),  # routes are case-insensitive
    ],
)
def test_status_of_one_version_or_label(http, main_server, path, version):
    resp = http.get(url(main_server, path))
    assert resp.status_code == 200
    statuses = resp.json()["model_version_status"]
    assert [s["version"] for s in statuses] == [version]
    assert statuses[0]["state"] == "AVAILABLE"


def test_status_errors(http, main_server):
    resp = http.get(url(main_server, "/v1/models/nope"))
    assert (resp.status_code, resp.json()) == (
        404,
        {"error": "Could not find any versions of model nope"},
    )
    resp = http.get(url(main_server, "/v1/models/penguin/versions/7"))
    assert (resp.status_code, resp.json()) == (
        404,
        {"error": "Could not find version 7 of model penguin"},
    )
    resp = http.get(url(main_server, "/v1/models/penguin/labels/nope"))
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": "Unrecognized servable version label: nope"},
    )
    resp = http.get(url(main_server, "/v1/models"))
    assert (resp.status_code, resp.json()) == (400, {"error": "Missing model name in request."})


# -- metadata -------------------------------------------------------------------------------


def test_metadata_has_the_doubled_signature_def_and_tensor_info(http, main_server):
    resp = http.get(url(main_server, "/v1/models/penguin/metadata"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["model_spec"] == {"name": "penguin", "signature_name": "", "version": "2"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "classification", "regression", "matrix", "bytes"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["island"]["dtype"] == "DT_STRING"
    assert default["inputs"]["bill_length_mm"]["dtype"] == "DT_FLOAT"
    assert default["inputs"]["bill_length_mm"]["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""}
    ]
    assert default["outputs"]["scores"]["tensor_shape"]["dim"][1]["size"] == "3"
    assert signatures["classification"]["method_name"] == "tensorflow/serving/classify"
    assert signatures["regression"]["method_name"] == "tensorflow/serving/regress"


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("/v1/models/penguin/versions/1/metadata", "1"),
        ("/v1/models/penguin/labels/canary/metadata", "2"),
    ],
)
def test_metadata_of_version_and_label(http, main_server, path, version):
    resp = http.get(url(main_server, path))
    assert resp.status_code == 200
    assert resp.json()["model_spec"]["version"] == version


def test_metadata_of_unknown_model(http, main_server):
    resp = http.get(url(main_server, "/v1/models/nope/metadata"))
    assert (resp.status_code, resp.json()) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )


# -- predict --------------------------------------------------------------------------------


def test_predict_row_format_with_several_inputs_and_outputs(http, main_server):
    resp = post(http, main_server, "/v1/models/penguin:predict", {"instances": ROWS})
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]
    assert len(predictions) == 3
    for row in predictions:
        assert set(row) == {"scores", "model_version"}
        assert row["model_version"] == 2  # no version: the latest
        assert len(row["scores"]) == 3
        assert sum(row["scores"]) == pytest.approx(1.0, abs=1e-5)


def test_predict_columnar_format(http, main_server):
    inputs = {name: [row[name] for row in ROWS] for name in ROWS[0]}
    resp = post(http, main_server, "/v1/models/penguin:predict", {"inputs": inputs})
    assert resp.status_code == 200, resp.text
    outputs = resp.json()["outputs"]
    assert outputs["model_version"] == [2, 2, 2]
    row = post(http, main_server, "/v1/models/penguin:predict", {"instances": ROWS}).json()
    assert outputs["scores"] == [p["scores"] for p in row["predictions"]]


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("/v1/models/penguin/versions/1:predict", 1),
        ("/v1/models/penguin/labels/stable:predict", 1),
        ("/v1/models/penguin/labels/canary:predict", 2),
    ],
)
def test_predict_by_version_and_label(http, main_server, path, version):
    resp = post(http, main_server, path, {"instances": ROWS[:1]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["predictions"][0]["model_version"] == version


def test_predict_single_input_single_output_plain_lists(http, main_server):
    body = {"signature_name": "matrix", "instances": [[1, 2], [3, 4.5]]}
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert resp.json() == {"predictions": [[2.0, 4.0], [6.0, 9.0]]}
    body = {"signature_name": "matrix", "inputs": [[0.1, 0.2]]}
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    # float32 values print in shortest form, as TF Serving does (not 0.20000000298...)
    assert resp.text == '{"outputs":[[0.2,0.4]]}'


def test_predict_b64_in_and_bytes_out(http, main_server):
    raw = bytes(range(256))
    body = {
        "signature_name": "bytes",
        "instances": [{"b64": base64.b64encode(raw).decode()}, "text"],
    }
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert resp.status_code == 200, resp.text
    first, second = resp.json()["predictions"]
    assert first["length"] == 256
    assert base64.b64decode(first["echo_bytes"]["b64"]) == raw  # alias ends in _bytes
    assert second == {"length": 4, "echo_bytes": {"b64": base64.b64encode(b"text").decode()}}


def test_predict_non_finite_values_print_as_tokens(http, main_server):
    body = '{"signature_name": "matrix", "inputs": [[NaN, Infinity]]}'
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert resp.status_code == 200, resp.text
    assert resp.text.replace(" ", "") == '{"outputs":[[NaN,Infinity]]}'


# -- classify / regress ---------------------------------------------------------------------


def test_classify(http, main_server):
    body = {"signature_name": "classification", "examples": ROWS}
    resp = post(http, main_server, "/v1/models/penguin:classify", body)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert len(results) == 3
    for row in results:
        assert [label for label, _ in row] == list(CLASS_NAMES)
        assert sum(score for _, score in row) == pytest.approx(1.0, abs=1e-5)
    predict = post(http, main_server, "/v1/models/penguin:predict", {"instances": ROWS}).json()
    assert [s for _, s in results[0]] == pytest.approx(predict["predictions"][0]["scores"])


def test_classify_with_context_and_label(http, main_server):
    body = {
        "signature_name": "classification",
        "context": {"island": "Dream", "flipper_length_mm": 190},
        "examples": [{"bill_length_mm": 40.0}, {"bill_length_mm": 50.0, "island": "Biscoe"}],
    }
    resp = post(http, main_server, "/v1/models/penguin/labels/stable:classify", body)
    assert resp.status_code == 200, resp.text
    with_context = resp.json()["results"]
    rows = [
        {"bill_length_mm": 40.0, "flipper_length_mm": 190, "island": "Dream"},
        {"bill_length_mm": 50.0, "flipper_length_mm": 190, "island": "Biscoe"},
    ]
    plain = post(
        http,
        main_server,
        "/v1/models/penguin/versions/1:classify",
        {"signature_name": "classification", "examples": rows},
    ).json()["results"]
    assert with_context == plain


def test_regress_by_version(http, main_server):
    body = {"signature_name": "regression", "examples": [{"bill_length_mm": 1.5}, {}]}
    resp = post(http, main_server, "/v1/models/penguin/versions/1:regress", body)
    assert resp.json() == {"results": [4.0, 1.0]}  # 2 * x + version
    resp = post(http, main_server, "/v1/models/penguin:regress", body)
    assert resp.json() == {"results": [5.0, 2.0]}


def test_classify_and_regress_errors(http, main_server):
    resp = post(http, main_server, "/v1/models/penguin:classify", {"signature_name": "x"})
    assert resp.status_code == 400
    assert "key 'examples' is expected and was not found" in resp.json()["error"]
    body = {"signature_name": "classification", "examples": []}
    resp = post(http, main_server, "/v1/models/penguin:classify", body)
    assert resp.status_code == 400
    assert resp.json()["error"].endswith("'examples' value is an empty array")
    body = {"signature_name": "nope", "examples": [{"a": 1}]}
    resp = post(http, main_server, "/v1/models/penguin:regress", body)
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": "No signature was found with the name: nope"},
    )
    body = {"examples": [{"a": [1, 2.5]}]}
    resp = post(http, main_server, "/v1/models/penguin:classify", body)
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": "Unexpected element type in feature: a expecting type: int64"},
    )
    body = {"signature_name": "matrix", "examples": [{"a": 1}]}
    resp = post(http, main_server, "/v1/models/penguin:classify", body)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("No classification inputs found in SignatureDef: ")


# -- the contract's error cases -------------------------------------------------------------


def test_unknown_model_or_version_is_404(http, main_server):
    resp = post(http, main_server, "/v1/models/nope:predict", {"instances": [1]})
    assert (resp.status_code, resp.json()) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )
    resp = post(http, main_server, "/v1/models/penguin/versions/7:predict", {"instances": [1]})
    assert (resp.status_code, resp.json()) == (
        404,
        {"error": "Servable not found for request: Specific(penguin, 7)"},
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"{bad", "JSON Parse error: Missing a name for object member. at offset: 1"),
        (b'{"instances": [1,]}', "JSON Parse error: Invalid value. at offset: 17"),
        (b"[1]", "JSON Value: [1] Is not object"),
        (b"{}", "Missing 'inputs' or 'instances' key"),
        (b'{"signature_name": 3, "instances": [1]}', None),
    ],
)
def test_malformed_json_is_400(http, main_server, body, error):
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert resp.status_code == 400
    message = resp.json()["error"]
    if error is None:
        assert "'signature_name' key must be a string value." in message
    else:
        assert message == error


def test_unknown_signature_is_400(http, main_server):
    body = {"signature_name": "x", "instances": [1]}
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": 'Serving signature name: "x" not found in signature def'},
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/models/penguin:explain"),
        ("POST", "/v1/models/penguin"),
        ("PUT", "/v1/models/penguin"),
        ("DELETE", "/v1/models/penguin:predict"),
        ("GET", "/v1/models/penguin:predict"),
        ("POST", "/v1/models/penguin:PREDICT"),  # matched case-insensitively, dispatched not
        ("GET", "/v1/models/penguin/versions/x"),
    ],
)
def test_a_path_that_is_not_a_route_is_400(http, main_server, method, path):
    resp = http.request(method, url(main_server, path), data=b"{}")
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": f"Malformed request: {method} {path}"},
    )


def test_both_instances_and_inputs(http, main_server):
    body = {"instances": [1], "inputs": [1], "signature_name": "matrix"}
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert resp.status_code == 400
    assert "expecting only one of 'inputs' or 'instances' keys to exist" in resp.json()["error"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"instances": [{"bill_length_mm": "x", "flipper_length_mm": 1, "island": "a"}]},
            "Failed to process element: 0 key: bill_length_mm of 'instances' list. Error: "
            'INVALID_ARGUMENT: JSON Value: "x" Type: String is not of expected type: float',
        ),
        (
            {"instances": [{"bill_length_mm": 1.0, "flipper_length_mm": 1.5, "island": "a"}]},
            "Failed to process element: 0 key: flipper_length_mm of 'instances' list. Error: "
            "INVALID_ARGUMENT: JSON Value: 1.5 Type: Number is not of expected type: int64",
        ),
        (
            {"instances": [1, 2]},
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map",
        ),
        ({"instances": []}, None),
        (
            {"inputs": {"bill_length_mm": [1.0], "island": ["a"]}},
            "Missing named input: flipper_length_mm in 'inputs' object.",
        ),
        (
            {"signature_name": "matrix", "instances": [[1, 2], [3]]},
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
            "Expecting tensor size: 2 but got: 1",
        ),
        (
            {"signature_name": "matrix", "inputs": [[1, 2], [3]]},
            "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        ),
        (
            {"signature_name": "bytes", "instances": [{"b64": "%%%"}]},
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            "Unable to base64 decode",
        ),
        (
            {"signature_name": "matrix", "instances": [[1, 2, 3]]},
            "Input 'x' of signature 'matrix' has shape [1,3], but the signature expects "
            "[-1,2] (-1 = any size).",
        ),
    ],
)
def test_bad_tensors_are_400_with_tf_serving_messages(http, main_server, body, error):
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert resp.status_code == 400
    if error is None:
        assert resp.json()["error"].endswith("No values in 'instances' array")
    else:
        assert resp.json()["error"] == error


def test_not_a_rest_path_is_404(http, main_server):
    resp = http.get(url(main_server, "/v2/models/penguin"))
    assert resp.status_code == 404


# -- monitoring -----------------------------------------------------------------------------


def test_prometheus_metrics(http, main_server):
    post(http, main_server, "/v1/models/penguin:predict", {"instances": ROWS})
    post(http, main_server, "/v1/models/nope:predict", {"instances": ROWS})
    resp = http.get(url(main_server, "/monitoring/prometheus/metrics"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = resp.text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="penguin",status="OK"}' in text
    # A model not served is the client's name: counted under one fixed value, not its own.
    assert ':tensorflow:serving:request_count{model_name="",status="NOT_FOUND"}' in text
    assert 'model_name="nope"' not in text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert (
        ':tensorflow:serving:request_latency_bucket{model_name="penguin",API="predict",'
        'entrypoint="REST",le="+Inf"}' in text
    )
    assert ":tensorflow:serving:request_example_counts_bucket{" in text
    # Warm-up replayed both records of each version at load time.
    assert ':tensorflow:serving:model_warmup_records_read{model_path="' in text
    assert 'status="OK"} 2' in text


# -- hostile input: each class of decode failure is a 400 with a JSON body --------------------

DIGITS = "9" * 5000  # past Python's int-string limit (4300)
DEEP = "[" * 40 + "1" + "]" * 40


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/models/penguin:predict", '{"instances": [' + DIGITS + "]}"),
        ("/v1/models/penguin:predict", '{"signature_name": ' + DIGITS + "}"),
        ("/v1/models/penguin:predict", '{"instances": [{"bill_length_mm": 1' + "0" * 400 + "}]}"),
        ("/v1/models/penguin:classify", '{"examples": [{"f": ' + DIGITS + "}]}"),
        (f"/v1/models/penguin/versions/{DIGITS}:predict", '{"instances": [1]}'),
        ("/v1/models/penguin:predict", '{"instances": [{"bill_length_mm": ' + DEEP + "}]}"),
        ("/v1/models/penguin:predict", '{"inputs": {"bill_length_mm": ' + DEEP + "}}"),
        ("/v1/models/penguin:predict", '{"instances": [{"\\ud800": 1}]}'),
        ("/v1/models/penguin:predict", '{"instances": [{"island": 1, "\\udfff": "\\ud800"}]}'),
        ("/v1/models/penguin:classify", '{"examples": [{"\\ud800": "\\udc00"}]}'),
        ("/v1/models/penguin:classify", '{"examples": [{"bill_length_mm": "x\\ud800"}]}'),
        ("/v1/models/penguin:predict", b'{"instances": ["\xff\xfe"]}'),
        ("/v1/models/penguin:predict", '{"signature_name": "\\ud800", "instances": [1]}'),
    ],
)
def test_hostile_bodies_are_400_with_a_json_error(http, main_server, path, body):
    resp = post(http, main_server, path, body.encode() if isinstance(body, str) else body)
    assert resp.status_code == 400, resp.text
    assert isinstance(resp.json()["error"], str)


@pytest.mark.parametrize("payload", [b"\xff\xfe\x00", b"\x0a\x03\xff\xff\xff", b"\x80"])
def test_non_utf8_bytes_to_the_example_signature_are_400(http, main_server, payload):
    import base64

    body = {
        "signature_name": "classification",
        "instances": [{"b64": base64.b64encode(payload).decode()}],
    }
    resp = post(http, main_server, "/v1/models/penguin:predict", body)
    assert resp.status_code == 400, resp.text
    assert isinstance(resp.json()["error"], str)
