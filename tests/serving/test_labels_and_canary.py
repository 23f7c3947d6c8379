"""Version labels and canary routing on a real `beamline serve --root` over three versions.

The server starts with no labels file (discovery: latest version), as a fresh root does; the
tests write `<root>/serving/models.config` (TF Serving's ModelServerConfig, the format
`beamline promote` writes) and `routing.json` while it serves, and wait (bounded polls) for the
routes to answer as the files say.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import grpc
import pytest
import requests

from beamline_serving.core.routing import (
    BUCKETS,
    REQUEST_KEY_HEADER,
    REQUEST_KEY_METADATA,
    VERSION_HEADER,
    bucket,
)
from tests.serving.support import PROJECT_ROOT, example_rows, start_server, write_test_model

MODEL = "penguin"
FLAG_PERCENT = 20  # --canary_percent of the server under test
APPLY_TIMEOUT = 120.0  # loading a version on 2 busy cores can take a while
TIMEOUT = 30


class Sourcing:
    """The serving directory of the test root and the files promote would write there."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.labels_file = directory / "models.config"
        self.routing_file = directory / "routing.json"

    def write(self, path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # atomic, as promote writes it

    def labels_text(self, versions: list[int], labels: dict[str, int]) -> str:
        """The labels file exactly as the contract gives it (one config per labelled model)."""
        lines = [
            "model_config_list {",
            "  config {",
            f'    name: "{MODEL}"',
            f'    base_path: "{self.directory / MODEL}"',
            '    model_platform: "tensorflow"',
            "    model_version_policy { specific { "
            + " ".join(f"versions: {v}" for v in versions)
            + " } }",
        ]
        lines += [f'    version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items()]
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"

    def write_labels(self, versions: list[int], labels: dict[str, int]) -> str:
        text = self.labels_text(versions, labels)
        self.write(self.labels_file, text)
        return text

    def write_routing(self, percents: dict[str, object]) -> None:
        doc = {"models": {name: {"canary_percent": p} for name, p in percents.items()}}
        self.write(self.routing_file, json.dumps(doc))


@pytest.fixture(scope="module")
def root(model_dir, tmp_path_factory):
    """A run root with serving/penguin/{1,2,3} (the test model answers its own version)."""
    base = tmp_path_factory.mktemp("versions-root")
    serving = base / "serving"
    (serving / MODEL).mkdir(parents=True)
    for version in (1, 2):
        shutil.copytree(model_dir / "models" / MODEL / str(version), serving / MODEL / str(version))
    write_test_model(serving / MODEL / "3", 3)
    return base


@pytest.fixture(scope="module")
def files(root) -> Sourcing:
    return Sourcing(root / "serving")


@pytest.fixture(scope="module")
def server(root, tmp_path_factory):
    logs = tmp_path_factory.mktemp("versions-logs")
    process = start_server(
        args=[
            f"--root={root}",
            "--file_system_poll_wait_seconds=0.2",
            f"--canary_percent={FLAG_PERCENT}",
            f"--request_log_dir={logs / 'requests'}",
        ],
        ready_model=MODEL,
        log_dir=logs,
    )
    process.request_log_dir = logs / "requests"
    yield process
    process.stop()


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def stub(server):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def predict(session, server, route: str = "", key: str | None = None, bill: float = 39.1):
    """(status, version header, version the model computed) of one REST predict."""
    rows = [dict(example_rows()[0], bill_length_mm=bill)]
    headers = {REQUEST_KEY_HEADER: key} if key is not None else {}
    resp = session.post(
        f"{server.rest_url}/v1/models/{MODEL}{route}:predict",
        json={"instances": rows},
        headers=headers,
        timeout=TIMEOUT,
    )
    if resp.status_code != 200:
        return resp.status_code, None, resp.text
    header = resp.headers.get(VERSION_HEADER)
    return 200, int(header) if header else None, resp.json()["predictions"][0]["model_version"]


def answered(session, server, route: str = "", key: str | None = None) -> int | None:
    status, header, computed = predict(session, server, route, key)
    if status != 200:
        return None
    assert header == computed, "the version header names another version than the one that ran"
    return header


def wait_for(condition, what: str, server, timeout: float = APPLY_TIMEOUT) -> float:
    """Polls `condition()` until true; returns the monotonic time it was first seen true."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert server.alive(), server.log()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout}s:\n{server.log()[-4000:]}")
        time.sleep(0.05)
    return time.monotonic()


def apply_labels(session, server, files, versions, labels) -> float:
    """Writes the labels file and waits until every label route answers its version."""
    files.write_labels(versions, labels)
    return wait_for(
        lambda: all(answered(session, server, f"/labels/{k}") == v for k, v in labels.items()),
        f"labels {labels}",
        server,
    )


def key_with(low: int, high: int, prefix: str = "k") -> str:
    """A request key whose canary bucket is in [low, high) of BUCKETS."""
    return next(f"{prefix}{i}" for i in range(100_000) if low <= bucket(f"{prefix}{i}") < high)


def test_labels_file_written_while_serving_is_applied(session, server, files, stub):
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.config import model_server_config_pb2

    files.labels_file.unlink(missing_ok=True)
    files.write_routing({MODEL: 0})
    wait_for(lambda: answered(session, server) == 3, "discovery serving the latest", server)
    text = files.labels_text([1, 2], {"stable": 1, "canary": 2})
    # The file is TF Serving's own ModelServerConfig, as tensorflow_model_server would read it.
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert dict(entry.version_labels) == {"stable": 1, "canary": 2}
    assert entry.base_path == str(files.directory / MODEL)
    apply_labels(session, server, files, [1, 2], {"stable": 1, "canary": 2})
    # Unversioned requests go to stable (Beamline), not to the highest version (2).
    assert {answered(session, server) for _ in range(10)} == {1}
    assert answered(session, server, "/versions/2") == 2
    # gRPC: version_label routes as REST's /labels/ does; responses name the version.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for name, values, dtype in (
        ("bill_length_mm", [39.1], "float32"),
        ("flipper_length_mm", [181], "int64"),
        ("island", [b"Dream"], "string"),
    ):
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype))
    assert stub.Predict(request, timeout=TIMEOUT).model_spec.version.value == 1
    request.model_spec.version_label = "canary"
    response = stub.Predict(request, timeout=TIMEOUT)
    assert response.model_spec.version.value == 2
    assert list(tf.make_ndarray(response.outputs["model_version"])) == [2]


def test_status_and_metadata_name_the_labelled_version(session, server, files):
    apply_labels(session, server, files, [1, 2], {"stable": 1, "canary": 2})
    resp = session.get(f"{server.rest_url}/v1/models/{MODEL}/labels/canary/metadata")
    assert resp.status_code == 200
    assert resp.json()["model_spec"]["version"] == "2"
    assert resp.headers[VERSION_HEADER] == "2"
    versions = session.get(f"{server.rest_url}/v1/models/{MODEL}").json()
    available = {
        s["version"] for s in versions["model_version_status"] if s["state"] == "AVAILABLE"
    }
    assert available == {"1", "2"}  # the specific policy: 3 is not served


def test_label_switches_under_load_fail_no_request(session, server, files):
    """Promote, push, promote, roll back onto an unloaded version: clients on unversioned,
    stable and canary routes see zero failures and only versions valid at that moment."""
    files.write_routing({MODEL: 0})
    steps = [
        ([1, 2], {"stable": 1, "canary": 2}),
        ([1, 2], {"stable": 2, "canary": 2}),  # promote 2
        ([2, 3], {"stable": 2, "canary": 3}),  # a new push takes canary; 1 unloads
        ([2, 3], {"stable": 3, "canary": 3}),  # promote 3
        ([1, 3], {"stable": 1, "canary": 3}),  # roll back to 1: loaded before relabel
    ]
    start = apply_labels(session, server, files, *steps[0])
    windows = [[start, None, steps[0][1]]]  # [written, next one seen applied, labels]
    results: list[tuple[str, float, float, int, object]] = []
    stop = threading.Event()

    def client(routes):
        with requests.Session() as own:
            while not stop.is_set():
                for route, name in routes:
                    sent = time.monotonic()
                    status, header, computed = predict(own, server, route)
                    version = header if status == 200 and header == computed else None
                    results.append((name, sent, time.monotonic(), status, version or computed))

    clients = [
        threading.Thread(target=client, args=([("", "stable"), ("/labels/canary", "canary")],)),
        threading.Thread(target=client, args=([("/labels/stable", "stable")],)),
    ]
    for thread in clients:
        thread.start()
    try:
        for versions, labels in steps[1:]:
            written = time.monotonic()
            seen = apply_labels(session, server, files, versions, labels)
            windows[-1][1] = seen
            windows.append([written, None, labels])
        seen_last = time.monotonic()
        wait_for(lambda: len([r for r in results if r[1] > seen_last]) >= 10, "more load", server)
    finally:
        stop.set()
        for thread in clients:
            thread.join(TIMEOUT)
    failures = [r for r in results if r[3] != 200]
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:3]}"
    for label, sent, received, _status, version in results:
        valid = {
            labels[label]
            for written, until, labels in windows
            if written <= received and (until is None or sent <= until)
        }
        assert version in valid, (label, sent, received, version, windows)
    assert len(results) >= 50, "the load was too light to mean anything"


def test_canary_split_follows_routing_json_then_the_flag(session, server, files, stub):
    apply_labels(session, server, files, [1, 2], {"stable": 1, "canary": 2})
    files.write_routing({MODEL: 30})
    probe = key_with(2500, 3000)  # canary at 30 %, stable at the flag's 20 %
    wait_for(lambda: answered(session, server, key=probe) == 2, "routing.json's 30 %", server)
    keys = [f"user-{i}" for i in range(600)]
    got = {key: answered(session, server, key=key) for key in keys}
    expected = {key: 2 if bucket(key) < 0.30 * BUCKETS else 1 for key in keys}
    assert got == expected  # deterministic: the key's hash bucket decides
    share = sum(v == 2 for v in got.values()) / len(keys)
    assert 0.24 < share < 0.36
    assert {answered(session, server, key=keys[0]) for _ in range(5)} == {got[keys[0]]}
    # Without a key the choice is random, in about the same proportion.
    unkeyed = [answered(session, server) for _ in range(300)]
    assert set(unkeyed) == {1, 2} and 0.18 < unkeyed.count(2) / 300 < 0.42
    # gRPC metadata carries the same key to the same version.
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    for key in keys[:40]:
        response = stub.GetModelMetadata(
            request, metadata=[(REQUEST_KEY_METADATA, key)], timeout=TIMEOUT
        )
        assert response.model_spec.version.value == got[key]
    # routing.json gone: the flag's percentage applies.
    files.routing_file.unlink()
    wait_for(lambda: answered(session, server, key=probe) == 1, "--canary_percent 20", server)
    assert all(
        answered(session, server, key=key) == (2 if bucket(key) < 0.20 * BUCKETS else 1)
        for key in keys[:200]
    )


def test_hostile_routing_and_keys_are_refused_not_500(session, server, files, stub, root):
    apply_labels(session, server, files, [1, 2], {"stable": 1, "canary": 2})
    files.write_routing({MODEL: 100})
    wait_for(lambda: answered(session, server, key="anyone") == 2, "100 % canary", server)
    files.write_routing({MODEL: 150})
    wait_for(lambda: "canary_percent is 150" in server.log(), "the refusal logged", server)
    assert answered(session, server, key="anyone") == 2  # the last good routing stays
    files.write(files.labels_file, "model_config_list { config { name: ")  # torn by hand
    wait_for(lambda: "labels file was not applied" in server.log(), "the refusal logged", server)
    assert answered(session, server, "/labels/stable") == 1
    for bad in ("x" * 300, "caf\u00e9"):
        status, _, body = predict(session, server, key=bad)
        assert status == 400 and REQUEST_KEY_HEADER in body, body
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelMetadata(request, metadata=[(REQUEST_KEY_METADATA, "x" * 300)], timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    files.write_routing({MODEL: 0})
    files.write_labels([1, 2], {"stable": 1, "canary": 2})
    # Out-of-range flags are usage errors (exit 2), before any model loads.
    result = subprocess.run(
        [sys.executable, "-m", "beamline", "serve", f"--root={root}", "--canary_percent=150"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 2 and "--canary_percent" in result.stderr, result.stderr


def test_request_log_records_name_the_version_that_answered(session, server, files):
    import tensorflow as tf

    from beamline_serving.request_log.reader import read_prediction_logs

    apply_labels(session, server, files, [1, 2], {"stable": 1, "canary": 2})
    files.write_routing({MODEL: 50})
    probe, steady = key_with(0, 2000), key_with(6000, 10_000)
    # Both sides: a canary-bucket key alone also answers 2 under an earlier 100 % routing.
    wait_for(lambda: answered(session, server, key=probe) == 2
             and answered(session, server, key=steady) == 1, "50 % canary", server)
    sent = {}
    for i in range(40):
        bill = 100.0 + i  # identifies the request in the log
        status, header, _ = predict(session, server, key=f"log-{i}", bill=bill)
        assert status == 200
        sent[bill] = header
    assert set(sent.values()) == {1, 2}

    def logged() -> dict[float, int]:
        found = {}
        for record in read_prediction_logs(server.request_log_dir):
            request = record.predict_log.request
            for bill in tf.make_ndarray(request.inputs["bill_length_mm"]).tolist():
                if round(bill, 3) in sent:
                    found[round(bill, 3)] = request.model_spec.version.value
        return found

    wait_for(lambda: len(logged()) == len(sent), "the log records", server, timeout=60)
    assert logged() == sent


def test_removing_the_labels_file_goes_back_to_discovery(session, server, files):
    apply_labels(session, server, files, [1, 2], {"stable": 1, "canary": 2})
    files.write_routing({MODEL: 0})
    files.labels_file.unlink()
    wait_for(lambda: answered(session, server) == 3, "the latest version again", server)
    resp = session.post(
        f"{server.rest_url}/v1/models/{MODEL}/labels/stable:predict",
        json={"instances": example_rows()[:1]},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "Unrecognized servable version label: stable"}
