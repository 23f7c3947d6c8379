"""Model lifecycle on the no-flags server (serving `$BEAMLINE_ROOT/serving/<model>/`, polled every
0.2 s): hot reload under load, a corrupt version, a half-copied version, a failing warm-up, models
appearing and disappearing."""

from __future__ import annotations

import http.client
import itertools
import json
import shutil
import threading
import time
from collections import Counter

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.support import example_rows, write_test_model, write_warmup_requests

ROWS = example_rows()


@pytest.fixture(scope="module")
def serving_root(model_dir):
    return model_dir / "root" / "serving"


def versions_on_disk(model_path) -> list[int]:
    return sorted(int(p.name) for p in model_path.iterdir() if p.name.isdigit())


def next_version(model_path) -> int:
    return max(versions_on_disk(model_path), default=0) + 1


def status(server, model="penguin") -> dict[int, dict]:
    resp = requests.get(f"{server.rest_url}/v1/models/{model}", timeout=10)
    if resp.status_code != 200:
        return {}
    return {int(s["version"]): s for s in resp.json()["model_version_status"]}


def wait_for(predicate, timeout=300.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


_WITNESSES = itertools.count()


def a_whole_poll_passed(server, serving_root, tmp_path) -> None:
    """The positive event a "nothing happens" check waits for: a new model directory appears
    and is served, so a whole poll pass began after this call, and that pass listed every
    model's versions as they are now. The witness model is removed again afterwards."""
    name = f"witness{next(_WITNESSES)}"
    write_test_model(tmp_path / name / "1", 1, warmup=False)
    shutil.move(tmp_path / name, serving_root / name)
    wait_for(
        lambda: status(server, name).get(1, {}).get("state") == "AVAILABLE",
        timeout=300, what=f"the witness model {name} to load",
    )
    shutil.rmtree(serving_root / name)
    wait_for(lambda: not status(server, name), timeout=300, what=f"{name} to go")


def served_version(server, model="penguin") -> int:
    resp = requests.post(
        f"{server.rest_url}/v1/models/{model}:predict", json={"instances": ROWS[:1]}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["predictions"][0]["model_version"]


def current_version(server) -> int:
    available = [v for v, s in status(server).items() if s["state"] == "AVAILABLE"]
    return max(available)


def test_no_flags_serves_the_latest_pushed_version(root_server, serving_root):
    assert versions_on_disk(serving_root / "penguin")
    assert served_version(root_server) == current_version(root_server)


def test_hot_reload_while_clients_send_requests(root_server, serving_root, tmp_path):
    model_path = serving_root / "penguin"
    old = current_version(root_server)
    new = next_version(model_path)
    stop = threading.Event()
    failures: list[str] = []
    seen: Counter = Counter()
    after_switch: list[int] = []
    switched = threading.Event()

    def rest_client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                late = switched.is_set()
                try:
                    resp = session.post(
                        f"{root_server.rest_url}/v1/models/penguin:predict",
                        json={"instances": ROWS},
                        timeout=30,
                    )
                except requests.RequestException as exc:
                    failures.append(f"REST {exc!r}")
                    continue
                if resp.status_code != 200:
                    failures.append(f"REST {resp.status_code} {resp.text}")
                    continue
                version = resp.json()["predictions"][0]["model_version"]
                seen[version] += 1
                if late:  # sent after the old version was unloaded
                    after_switch.append(version)

    def grpc_client() -> None:
        channel = grpc.insecure_channel(root_server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "penguin"
        request.inputs["bill_length_mm"].CopyFrom(tf.make_tensor_proto([40.0], tf.float32))
        request.inputs["flipper_length_mm"].CopyFrom(tf.make_tensor_proto([190], tf.int64))
        request.inputs["island"].CopyFrom(tf.make_tensor_proto(["Dream"]))
        while not stop.is_set():
            late = switched.is_set()
            try:
                response = stub.Predict(request, timeout=30)
            except grpc.RpcError as exc:
                failures.append(f"gRPC {exc.code()} {exc.details()}")
                continue
            seen[response.model_spec.version.value] += 1
            if late:
                after_switch.append(response.model_spec.version.value)
        channel.close()

    clients = [threading.Thread(target=rest_client) for _ in range(2)]
    clients.append(threading.Thread(target=grpc_client))
    for client in clients:
        client.start()
    try:
        wait_for(lambda: seen[old] >= 5, what="requests on the old version")
        write_test_model(model_path / str(new), new)
        wait_for(
            lambda: status(root_server).get(old, {}).get("state") == "END",
            what="the old version to be unloaded",
        )
        switched.set()
        wait_for(lambda: len(after_switch) >= 10, what="requests after the switch")
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert failures == []
    assert seen[old] >= 5 and seen[new] >= 1
    assert set(after_switch) == {new}
    states = status(root_server)
    assert states[new]["state"] == "AVAILABLE"
    assert states[old] == {
        "version": str(old),
        "state": "END",
        "status": {"error_code": "OK", "error_message": ""},
    }


def test_corrupt_new_version_keeps_the_old_one_serving(root_server, serving_root, tmp_path):
    model_path = serving_root / "penguin"
    old = current_version(root_server)
    bad = next_version(model_path)
    version_dir = model_path / str(bad)
    (version_dir / "variables").mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"\x08\x96\x01 this is not a SavedModel")
    state = wait_for(
        lambda: status(root_server).get(bad, {}).get("state") == "END" and status(root_server),
        what="the corrupt version to end",
    )
    assert state[bad]["status"]["error_code"] != "OK"
    assert "saved_model.pb" in state[bad]["status"]["error_message"]
    assert state[old]["state"] == "AVAILABLE"
    assert served_version(root_server) == old
    a_whole_poll_passed(root_server, serving_root, tmp_path)  # polls later: not retried
    later = status(root_server)
    assert later[old]["state"] == "AVAILABLE" and later[bad] == state[bad], later


def test_half_copied_version_is_not_picked_up(root_server, serving_root, tmp_path):
    model_path = serving_root / "penguin"
    old = current_version(root_server)
    new = next_version(model_path)
    staging = write_test_model(tmp_path / str(new), new)
    target = model_path / str(new)
    shutil.copytree(staging, target, ignore=shutil.ignore_patterns("saved_model.pb"))
    a_whole_poll_passed(root_server, serving_root, tmp_path)  # it saw the half-copied version
    assert new not in status(root_server)
    assert served_version(root_server) == old
    shutil.copyfile(staging / "saved_model.pb", target / "saved_model.pb")  # the Pusher's last step
    wait_for(
        lambda: status(root_server).get(new, {}).get("state") == "AVAILABLE",
        what="the completed version",
    )
    assert served_version(root_server) == new


def test_failing_warmup_fails_the_load(root_server, serving_root, tmp_path):
    model_path = serving_root / "penguin"
    old = current_version(root_server)
    new = next_version(model_path)
    staging = write_test_model(tmp_path / str(new), new)
    write_warmup_requests(staging / "assets.extra" / "tf_serving_warmup_requests", broken=True)
    target = model_path / str(new)
    shutil.copytree(staging, target, ignore=shutil.ignore_patterns("saved_model.pb"))
    shutil.copyfile(staging / "saved_model.pb", target / "saved_model.pb")
    state = wait_for(
        lambda: status(root_server).get(new, {}).get("state") == "END" and status(root_server),
        what="the version with a failing warm-up to end",
    )
    assert state[new]["status"]["error_code"] == "INVALID_ARGUMENT"
    assert "no_such_input" in state[new]["status"]["error_message"]
    assert served_version(root_server) == old


def test_models_appear_and_disappear_under_the_serving_root(root_server, serving_root):
    other = serving_root / "other"
    other.mkdir()
    write_test_model(other / "5", 5, warmup=False)
    wait_for(
        lambda: status(root_server, "other").get(5, {}).get("state") == "AVAILABLE",
        what="the new model",
    )
    assert served_version(root_server, "other") == 5
    shutil.rmtree(other)
    wait_for(lambda: not status(root_server, "other"), what="the model to go away")
    resp = requests.post(
        f"{root_server.rest_url}/v1/models/other:predict", json={"instances": ROWS}, timeout=10
    )
    assert (resp.status_code, resp.json()) == (
        404,
        {"error": "Servable not found for request: Latest(other)"},
    )


@pytest.mark.parametrize(
    "name",
    ["..%2Fserving%2Fpenguin", "%2E%2E", "..", "penguin%2F..%2Fpenguin", "%2Fetc%2Fpasswd"],
)
def test_model_names_cannot_escape_the_model_root(root_server, name):
    # http.client sends the path byte for byte (requests would normalise the dot segments).
    status_code, body = raw_request(root_server, "GET", f"/v1/models/{name}")
    assert status_code == 404
    assert body["error"].startswith("Could not find any versions of model ")
    status_code, body = raw_request(
        root_server, "POST", f"/v1/models/{name}:predict", json.dumps({"instances": ROWS})
    )
    assert status_code == 404
    assert body["error"].startswith("Servable not found for request: Latest(")


def raw_request(server, method: str, path: str, body: str | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_tf_serving_single_model_flags_and_clean_shutdown(serve_model, model_dir):
    # `--model_name` / `--model_base_path`, the way the TF Serving image is usually run.
    server = serve_model(model_dir / "models" / "penguin", "tfs", "--enable_batching=false")
    statuses = status(server, "tfs")
    assert list(statuses) == [2]  # latest version only (default policy)
    assert served_version(server, "tfs") == 2
    assert server.stop() == 0  # SIGTERM: stops accepting, finishes, exits 0
    assert "Shutting down" in server.log()
