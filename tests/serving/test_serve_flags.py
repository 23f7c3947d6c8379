"""Serving flags that change behaviour, each against one real server started with all of them
(the session's main server, started without them, is the contrast where one is needed):

--model_config_file_poll_wait_seconds, --rest_api_enable_cors_support,
--enable_signature_method_name_check, --allow_version_labels_for_unavailable_models,
--num_request_iterations_for_warmup, --allow_reload_config=false.

That server is started on its own (`python -m beamline_serving`, the server's own parser), the
session's servers through `beamline serve`; test_cli_and_config.py checks that both parsers
take the same flags and build the same options from them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from beamline_serving.core.flags import STANDALONE_COMMAND
from tests.serving.support import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    ServerProcess,
    example_rows,
    start_server,
    write_test_model,
)

ROWS = example_rows()
WARMUP_ITERATIONS = 3
LATER_VERSION = 7  # labelled `canary` in the config before it exists on disk
HANG = 300  # a bound on conditions the server reaches in seconds; never a speed limit


@dataclass
class FlagServer:
    server: ServerProcess
    base: Path
    models: Path
    config: Path
    metrics_at_start: str  # the Prometheus page before any request: only warm-up ran


def _config_text(models: Path, twin: bool) -> str:
    text = (
        f'model_config_list {{ config {{ name: "flags" base_path: "{models / "flags"}" '
        'model_platform: "tensorflow" model_version_policy { all {} } '
        f'version_labels {{ key: "stable" value: 1 }} '
        f'version_labels {{ key: "canary" value: {LATER_VERSION} }} }}'
    )
    if twin:
        text += f' config {{ name: "twin" base_path: "{models / "flags"}" }}'
    return text + " }\n"


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)  # the poller never reads half a file


def _poll(condition, what: str, timeout: float = HANG):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never true: {what}"
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def flagged(tmp_path_factory) -> FlagServer:
    base = tmp_path_factory.mktemp("serve_flags")
    models = base / "models"
    write_test_model(models / "flags" / "1", 1)  # with a warm-up file
    config = base / "models.config"
    _write_atomically(config, _config_text(models, twin=False))
    monitoring = base / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n", encoding="utf-8")
    server = start_server(
        ready_model="flags",
        log_dir=base,
        entry=STANDALONE_COMMAND,
        args=[
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=1",
            "--rest_api_enable_cors_support=true",
            "--enable_signature_method_name_check=true",
            "--allow_version_labels_for_unavailable_models=true",
            f"--num_request_iterations_for_warmup={WARMUP_ITERATIONS}",
            f"--monitoring_config_file={monitoring}",
            "--allow_reload_config=false",
        ],
    )
    try:
        metrics = requests.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=60)
        yield FlagServer(server, base, models, config, metrics.text)
    finally:
        server.stop()


def _counter(page: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in page.splitlines():
        if not line.startswith(name + "{"):
            continue
        sample_labels = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_server_started_on_its_own_answers_predict(flagged):
    """`python -m beamline_serving` with TF Serving's flag syntax, no framework command."""
    assert flagged.server.args[1:3] == list(STANDALONE_COMMAND)
    answer = requests.post(
        f"{flagged.server.rest_url}/v1/models/flags/versions/1:predict",
        json={"instances": ROWS},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == len(ROWS)
    assert all(len(p["scores"]) == 3 and p["model_version"] == 1 for p in predictions)


def test_warmup_replays_each_record_the_configured_number_of_times(flagged):
    page = flagged.metrics_at_start
    records = _counter(page, ":tensorflow:serving:model_warmup_records_read", status="OK")
    assert records == 2  # write_warmup_requests: one predict, one classify
    runs = _counter(
        page, ":tensorflow:serving:runtime_latency_count", model_name="flags"
    )
    assert runs == WARMUP_ITERATIONS * records, page


def test_cors_headers_and_preflight(flagged, main_server):
    url = f"{flagged.server.rest_url}/v1/models/flags:predict"
    preflight = requests.options(url, headers={"Origin": "http://ui.example"}, timeout=60)
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    answer = requests.post(url, json={"instances": ROWS[:1]}, timeout=60)
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*"
    no_origin = requests.options(url, timeout=60)
    assert no_origin.status_code == 400
    assert no_origin.json() == {"error": "Origin header is missing in CORS preflight"}
    # Without the flag, the same answer carries no CORS header.
    plain = requests.post(
        f"{main_server.rest_url}/v1/models/penguin:predict", json={"instances": ROWS[:1]},
        timeout=60,
    )
    assert plain.status_code == 200 and "Access-Control-Allow-Origin" not in plain.headers


def test_signature_method_names_are_checked(flagged):
    url = f"{flagged.server.rest_url}/v1/models/flags"
    wrong = requests.post(
        f"{url}:classify", json={"signature_name": "regression", "examples": ROWS[:1]},
        timeout=60,
    )
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": f"Expected classification signature method_name to be {CLASSIFY_METHOD}. "
        f"Was: {REGRESS_METHOD}"
    }
    right = requests.post(
        f"{url}:classify", json={"signature_name": "classification", "examples": ROWS[:1]},
        timeout=60,
    )
    assert right.status_code == 200, right.text
    regress = requests.post(
        f"{url}:regress", json={"signature_name": "regression", "examples": ROWS[:1]}, timeout=60
    )
    assert regress.status_code == 200, regress.text


def test_a_label_may_name_a_version_before_it_is_available(flagged, tmp_path):
    """The server started although `canary` named version 7, not on disk; once version 7 is
    pushed, the label serves it (and `stable` still serves 1)."""
    url = f"{flagged.server.rest_url}/v1/models/flags/labels"
    stable = requests.post(f"{url}/stable:predict", json={"instances": ROWS[:1]}, timeout=60)
    assert stable.status_code == 200 and stable.json()["predictions"][0]["model_version"] == 1
    early = requests.post(f"{url}/canary:predict", json={"instances": ROWS[:1]}, timeout=60)
    assert early.status_code in (400, 404), early.text  # not servable yet, never a 500
    staging = write_test_model(tmp_path / str(LATER_VERSION), LATER_VERSION, warmup=False)
    shutil.move(staging, flagged.models / "flags" / str(LATER_VERSION))

    def canary_version():
        answer = requests.post(f"{url}/canary:predict", json={"instances": ROWS[:1]}, timeout=60)
        return answer.status_code == 200 and answer.json()["predictions"][0]["model_version"]

    assert _poll(canary_version, "version 7 served under `canary`") == LATER_VERSION


def test_the_model_config_file_is_polled(flagged):
    status = f"{flagged.server.rest_url}/v1/models/twin"
    assert requests.get(status, timeout=60).status_code == 404
    _write_atomically(flagged.config, _config_text(flagged.models, twin=True))
    try:
        _poll(
            lambda: b'"AVAILABLE"' in requests.get(status, timeout=60).content,
            "the rewritten config's new model to load",
        )
        answer = requests.post(
            f"{flagged.server.rest_url}/v1/models/twin:predict", json={"instances": ROWS[:1]},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
    finally:
        _write_atomically(flagged.config, _config_text(flagged.models, twin=False))
    _poll(lambda: requests.get(status, timeout=60).status_code == 404, "twin to be removed")


def test_with_reloads_off_a_client_cannot_swap_the_models(flagged, tmp_path):
    """A reload pointing the served model at another SavedModel (any path the server can read)
    is refused, naming the flag; the model keeps serving from its own base path."""
    import grpc
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    hostile = tmp_path / "elsewhere"  # old servers unloaded `flags`: it has no versions here
    hostile.mkdir()
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(
        f"model_config_list {{ config {{ name: 'flags' base_path: '{hostile}' }} }}",
        request.config,
    )
    with grpc.insecure_channel(flagged.server.grpc_target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.HandleReloadConfigRequest(request, timeout=HANG)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "--allow_reload_config=true" in info.value.details()
    stable = requests.post(
        f"{flagged.server.rest_url}/v1/models/flags/labels/stable:predict",
        json={"instances": ROWS[:1]},
        timeout=60,
    )
    assert stable.status_code == 200 and stable.json()["predictions"][0]["model_version"] == 1
