"""Robustness and Beamline's additions: body limit, hostile input, batching, schema contract."""

from __future__ import annotations

import concurrent.futures
import socket
import time

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2

from tests.serving.support import example_rows, make_example

ROWS = example_rows()
# A guard against a hung request, far above any answer's real latency; never a speed limit.
HANG = 120
MAX_REQUEST_BYTES = 1024 * 1024  # the main server's --max_request_bytes (conftest.py)


def alive(http, server) -> bool:
    resp = http.post(f"{server.rest_url}/v1/models/penguin:predict", json={"instances": ROWS})
    return resp.status_code == 200 and server.alive()


# -- body size limit ------------------------------------------------------------------------


def test_body_over_the_limit_is_413(http, main_server):
    body = b'{"instances": [' + b"1.0," * (MAX_REQUEST_BYTES // 4) + b"1.0]}"
    resp = http.post(f"{main_server.rest_url}/v1/models/penguin:predict", data=body)
    assert resp.status_code == 413
    assert "larger than the server's limit of 1048576 bytes" in resp.json()["error"]
    assert alive(http, main_server)


def test_chunked_body_over_the_limit_is_413(http, main_server):
    def chunks():
        yield b'{"instances": ['
        for _ in range(40):
            yield b"1.0," * 10000
        yield b"1.0]}"

    resp = http.post(f"{main_server.rest_url}/v1/models/penguin:predict", data=chunks())
    assert resp.status_code == 413
    assert alive(http, main_server)


def test_grpc_message_over_the_limit_is_refused(prediction_stub, http, main_server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "penguin"
    request.model_spec.signature_name = "matrix"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0, 2.0]] * 200_000, tf.float32))
    with pytest.raises(grpc.RpcError) as info:
        prediction_stub.Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert alive(http, main_server)


# -- hostile input never takes the server down ----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"instances": ' + b"[" * 50_000 + b"1" + b"]" * 50_000 + b"}",
        b'{"signature_name": "matrix", "instances": [[1e999, 2]]}',
        b'{"instances": [{"bill_length_mm": 1, "flipper_length_mm": 99999999999999999999999,'
        b' "island": "a"}]}',
        b"\xff\xfe\x00{not utf-8",
        b'{"signature_name": "bytes", "instances": [{"b64": 12}]}',
        b'{"signature_name": "matrix", "inputs": {"x": null}}',
        b'{"signature_name": "matrix", "inputs": [[[1, 2]]]}',
        b'{"instances": [{"bill_length_mm": [1], "flipper_length_mm": [1, 2], "island": ["a"]}]}',
    ],
)
def test_malformed_requests_get_an_answer(http, main_server, body):
    resp = http.post(f"{main_server.rest_url}/v1/models/penguin:predict", data=body)
    assert 400 <= resp.status_code < 500, resp.text
    assert isinstance(resp.json()["error"], str)
    assert alive(http, main_server)


def test_garbage_on_the_socket_does_not_hurt(http, main_server):
    for garbage in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\nX: " + b"a" * 70000):
        with socket.create_connection(("127.0.0.1", main_server.rest_port), timeout=10) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            try:
                sock.recv(1000)
            except OSError:
                pass
    with socket.create_connection(("127.0.0.1", main_server.grpc_port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 1000)
    assert alive(http, main_server)


# -- batching -------------------------------------------------------------------------------


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(http, main_server):
    # batchy runs a batch only when it holds max_batch_size (4) rows (its timeout is ten
    # minutes): requests of 1, 1 and 2 rows can only be answered together, in one batch.
    sizes = (1, 1, 2)

    def send(i: int):
        rows = [dict(ROWS[(i + k) % 3], bill_length_mm=30.0 + i + k / 10) for k in range(sizes[i])]
        body = {"signature_name": "regression", "examples": rows}
        return requests.post(
            f"{main_server.rest_url}/v1/models/batchy:regress", json=body, timeout=HANG
        )

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(send, range(3)))
    for i, response in enumerate(responses):
        expected = [2 * (30.0 + i + k / 10) + 1 for k in range(sizes[i])]
        assert response.json()["results"] == pytest.approx(expected), response.text
    metrics = http.get(f"{main_server.rest_url}/monitoring/prometheus/metrics").text
    name = ":tensorflow:serving:batching_session:batch_size"
    values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith(name))
    up_to_two = int(values[f'{name}_bucket{{model_name="batchy",le="2"}}'])
    batches = int(values[f'{name}_count{{model_name="batchy"}}'])
    assert up_to_two < batches  # some batch had more than two rows


def test_full_batching_queue_is_503_and_unavailable(http, main_server, prediction_stub):
    # batchy holds an open batch until it is full and allows one batch in its queue: once a
    # 1-row request waits in the open batch, a 4-row request does not fit and finds the queue
    # full. Until the first one is queued, the 4-row request fills a batch of its own and is
    # answered 200, so polling for the 503 waits for exactly that event.
    url = f"{main_server.rest_url}/v1/models/batchy:predict"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:

        def queue_one_row():
            return pool.submit(requests.post, url, json={"instances": ROWS[:1]}, timeout=HANG)

        first = queue_one_row()
        deadline = time.monotonic() + HANG
        while True:
            if first.done():  # it met a full 4-row batch not yet taken (a 503 too): again
                assert first.result().status_code == 503, first.result().text
                first = queue_one_row()
            resp = http.post(url, json={"instances": ROWS + ROWS[:1]})
            if resp.status_code != 200 or time.monotonic() > deadline:
                break
        assert (resp.status_code, resp.json()) == (
            503,
            {"error": "The batch scheduling queue to which this task was submitted is full"},
        )
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "batchy"
        rows = ROWS + ROWS[:1]
        request.inputs["bill_length_mm"].CopyFrom(
            tf.make_tensor_proto([r["bill_length_mm"] for r in rows], tf.float32)
        )
        request.inputs["flipper_length_mm"].CopyFrom(
            tf.make_tensor_proto([r["flipper_length_mm"] for r in rows], tf.int64)
        )
        request.inputs["island"].CopyFrom(tf.make_tensor_proto([r["island"] for r in rows]))
        with pytest.raises(grpc.RpcError) as info:
            prediction_stub.Predict(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # Three more rows fill the open batch: the queued request and these complete.
        filler = http.post(url, json={"instances": ROWS})
        assert filler.status_code == 200, filler.text
        assert first.result().status_code == 200


def test_task_larger_than_max_batch_size_is_400(http, main_server):
    resp = http.post(
        f"{main_server.rest_url}/v1/models/batchy:predict", json={"instances": ROWS * 2}
    )
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": "Task size 6 is larger than maximum input batch size 4"},
    )


# -- schema contract ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "feature", "detail"),
    [
        ({"island": "Atlantis"}, "island", "'Atlantis' (row 1), which is not in the schema's"),
        (
            {"flipper_length_mm": 5000},
            "flipper_length_mm",
            "outside the schema's domain [100, 300]",
        ),
        ({"bill_length_mm": 1.5}, "bill_length_mm", "outside the schema's domain [10, 100]"),
    ],
)
def test_schema_contract_names_the_feature(http, main_server, row, feature, detail):
    body = {"instances": [ROWS[0], dict(ROWS[1], **row)]}
    resp = http.post(f"{main_server.rest_url}/v1/models/guarded:predict", json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert f'feature "{feature}"' in error and detail in error
    # The same request to the model without a contract is answered.
    resp = http.post(f"{main_server.rest_url}/v1/models/penguin:predict", json=body)
    assert resp.status_code == 200


def test_schema_contract_on_examples(http, main_server, prediction_stub):
    body = {"signature_name": "classification", "examples": [{"bill_length_mm": 40.0}]}
    resp = http.post(f"{main_server.rest_url}/v1/models/guarded:classify", json=body)
    assert resp.status_code == 400
    assert 'feature "flipper_length_mm" is required by the schema' in resp.json()["error"]
    body["examples"] = [{"bill_length_mm": 40.0, "flipper_length_mm": 190.5, "island": "Dream"}]
    resp = http.post(f"{main_server.rest_url}/v1/models/guarded:classify", json=body)
    assert resp.status_code == 400
    assert 'feature "flipper_length_mm" has float values' in resp.json()["error"]
    body["examples"] = [{"bill_length_mm": 40.0, "flipper_length_mm": 190, "island": "Dream"}]
    body["context"] = {"species": "not checked: not in SERVING"}
    resp = http.post(f"{main_server.rest_url}/v1/models/guarded:classify", json=body)
    assert resp.status_code == 200, resp.text

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "guarded"
    request.model_spec.signature_name = "classification"
    request.input.example_list.examples.add().CopyFrom(
        make_example(dict(ROWS[0], island="Atlantis"))
    )
    with pytest.raises(grpc.RpcError) as info:
        prediction_stub.Classify(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'feature "island"' in info.value.details()


# -- HTTP/1.1 details -----------------------------------------------------------------------


def _exchange(server, payload: bytes, expect_responses: int, timeout: float = 30) -> bytes:
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while data.count(b"HTTP/1.1 ") < expect_responses and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_pipelined_requests_are_answered_in_order(main_server):
    body = b'{"signature_name": "matrix", "instances": [[%d, 0]]}'
    payload = b"".join(
        b"POST /v1/models/penguin:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body % i), body % i)
        for i in range(1, 4)
    )
    data = _exchange(main_server, payload, 3)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"[[2.0,0.0]]") < data.index(b"[[4.0,0.0]]") < data.index(b"[[6.0,0.0]]")


def test_expect_100_continue_and_http10_close(main_server):
    body = b'{"signature_name": "matrix", "instances": [[1, 2]]}'
    head = (
        b"POST /v1/models/penguin:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", main_server.rest_port), timeout=30) as sock:
        sock.sendall(head)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"[[2.0,4.0]]}")
    data = _exchange(main_server, b"GET /v1/models/penguin HTTP/1.0\r\n\r\n", 1)
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


def test_malformed_http_is_400_and_closed(main_server):
    data = _exchange(main_server, b"POST /v1/models/penguin:predict HTTP/1.1\r\nBad\r\n\r\n", 1)
    assert data.startswith(b"HTTP/1.1 400 Bad Request") and b"Connection: close" in data
    data = _exchange(main_server, b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 1)
    assert data.startswith(b"HTTP/1.1 431")
