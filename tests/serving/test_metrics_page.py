"""Client-chosen model names against the session server's Prometheus page (REST and gRPC):
they can neither add lines to it nor make it grow."""

from __future__ import annotations

import grpc
import pytest
from tensorflow_serving.apis import predict_pb2

METRICS_PATH = "/monitoring/prometheus/metrics"
UNKNOWN_NAMES = 2000
GRPC_UNKNOWN_NAMES = 300


def _page(http, server) -> str:
    response = http.get(f"{server.rest_url}{METRICS_PATH}", timeout=60)
    assert response.status_code == 200
    return response.text


def test_a_model_name_cannot_inject_lines_into_the_metrics_page(http, main_server):
    injected = "/v1/models/x%0Afake_requests_total%20123456%0A%23:predict"
    answer = http.post(f"{main_server.rest_url}{injected}", data=b'{"instances": [1]}', timeout=60)
    assert answer.status_code == 404
    page = _page(http, main_server)
    assert "fake_requests_total 123456" not in page.splitlines()
    assert all(line.startswith((":tensorflow:", "# TYPE ")) for line in page.splitlines())


def test_the_metrics_page_stays_bounded_under_many_unknown_model_names(
    http, main_server, prediction_stub
):
    http.get(f"{main_server.rest_url}/v1/models/never-served-0", timeout=60)  # the shared cell
    with pytest.raises(grpc.RpcError):
        prediction_stub.Predict(predict_pb2.PredictRequest(), timeout=60)
    before = _page(http, main_server)
    padding = "n" * 500
    for i in range(UNKNOWN_NAMES):
        answer = http.get(f"{main_server.rest_url}/v1/models/{padding}{i}", timeout=60)
        assert answer.status_code == 404
    for i in range(GRPC_UNKNOWN_NAMES):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = f"{padding}{i}"
        with pytest.raises(grpc.RpcError) as info:
            prediction_stub.Predict(request, timeout=60)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    after = _page(http, main_server)
    assert padding not in after
    # Only the counts' digits may have grown (one fixed cell per status and entry point).
    assert len(after.splitlines()) == len(before.splitlines())
    assert len(after) - len(before) < 100
