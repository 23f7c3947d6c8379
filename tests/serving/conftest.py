"""Fixtures for `beamline serve` tests: small SavedModels and real server subprocesses.

Two servers start once per session, in parallel (each pays a TensorFlow import):

- `main_server`: a model config file (models `penguin` with versions 1 and 2 and labels
  stable=1 / canary=2, `batchy` with its own batching_params.pbtxt, `guarded` = penguin read
  through a file:// URI, with the schema contract), batching on, Prometheus on, a 1 MiB body limit.
- `root_server`: no model flags: serves `$BEAMLINE_ROOT/serving/<model>/` and polls every 0.2 s;
  the lifecycle tests push versions into it.

For an end-to-end test over a real pushed model, use the `serve_model` fixture (in tests under
tests/serving/) or `tests.serving.support.running_server` (anywhere):

    def test_pushed_penguin(serve_model, push_dir):
        server = serve_model(push_dir, "penguin")  # free loopback ports; waits for AVAILABLE
        requests.post(f"{server.rest_url}/v1/models/penguin:predict", json={"instances": [...]})
        grpc.insecure_channel(server.grpc_target)  # for the tensorflow_serving.apis stubs

    with running_server(model_name="penguin", model_base_path=push_dir) as server:
        ...
"""

from __future__ import annotations

import grpc
import pytest
import requests

from tests.serving.support import (
    PENGUIN_TEST_SCHEMA,
    ServerProcess,
    start_server,
    write_test_model,
)

MAX_REQUEST_BYTES = 1024 * 1024
# batchy's timeout is ten minutes: a batch runs when it is full (4 rows), so which requests share
# a batch does not depend on how fast this machine is (tests/serving/test_robustness.py).
BATCHY_PARAMS = """
max_batch_size { value: 4 }
batch_timeout_micros { value: 600000000 }
max_enqueued_batches { value: 1 }
num_batch_threads { value: 1 }
"""


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """Builds every test model once: models/{penguin/1,2, batchy/1}, root/serving/penguin/1."""
    base = tmp_path_factory.mktemp("serving")
    models = base / "models"
    (models / "penguin").mkdir(parents=True)
    (models / "batchy").mkdir()
    write_test_model(models / "penguin" / "1", 1)
    write_test_model(models / "penguin" / "2", 2)
    write_test_model(models / "batchy" / "1", 1, warmup=False, batching_params=BATCHY_PARAMS)
    # Not a version: non-numeric children are ignored.
    (models / "penguin" / "notes").mkdir()
    root_models = base / "root" / "serving" / "penguin"
    root_models.mkdir(parents=True)
    write_test_model(root_models / "1", 1)
    (base / "schema.pbtxt").write_text(PENGUIN_TEST_SCHEMA, encoding="utf-8")
    (base / "monitoring.config").write_text(
        "prometheus_config { enable: true }\n", encoding="utf-8"
    )
    (base / "batching.config").write_text(
        "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 0 }\n"
        "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 2 }\n",
        encoding="utf-8",
    )
    (base / "models.config").write_text(_model_config_text(models), encoding="utf-8")
    return base


@pytest.fixture(scope="session")
def model_config_text():
    """`(models_dir, extra="") -> text` of the main server's ModelServerConfig."""
    return _model_config_text


def _model_config_text(models, extra: str = "") -> str:
    return f"""
model_config_list {{
  config {{
    name: "penguin"
    base_path: "{models / "penguin"}"
    model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  config {{
    name: "batchy"
    base_path: "{models / "batchy"}"
    model_platform: "tensorflow"
  }}
  config {{
    name: "guarded"
    base_path: "file://{models / "penguin"}"
    model_platform: "tensorflow"
  }}
  {extra}
}}
"""


@pytest.fixture(scope="session")
def servers(model_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("serve-logs")
    main = start_server(
        args=[
            f"--model_config_file={model_dir / 'models.config'}",
            "--enable_batching",
            f"--batching_parameters_file={model_dir / 'batching.config'}",
            "--enable_per_model_batching_parameters=true",
            f"--monitoring_config_file={model_dir / 'monitoring.config'}",
            f"--max_request_bytes={MAX_REQUEST_BYTES}",
            f"--schema_file=guarded={model_dir / 'schema.pbtxt'}",
        ],
        ready_model="penguin",
        log_dir=logs,
        wait=False,
    )
    root = start_server(
        args=["--file_system_poll_wait_seconds=0.2"],
        env={"BEAMLINE_ROOT": str(model_dir / "root")},
        ready_model="penguin",
        log_dir=logs,
        wait=False,
    )
    started = [main, root]
    try:
        for server in started:
            server.wait_ready()
        yield {"main": main, "root": root}
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def serve_model(tmp_path_factory):
    """`serve_model(model_base_path, model_name, *extra_flags) -> ServerProcess`: a
    `beamline serve` subprocess for one model on free loopback ports, ready (a version
    AVAILABLE) when returned, stopped at the end of the session."""
    started: list[ServerProcess] = []
    logs = tmp_path_factory.mktemp("serve-model-logs")

    def serve(model_base_path, model_name: str, *extra_flags: str) -> ServerProcess:
        server = start_server(
            model_name=model_name,
            model_base_path=model_base_path,
            args=list(extra_flags),
            log_dir=logs,
        )
        started.append(server)
        return server

    yield serve
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def main_server(servers) -> ServerProcess:
    return servers["main"]


@pytest.fixture(scope="session")
def root_server(servers) -> ServerProcess:
    return servers["root"]


@pytest.fixture(scope="session")
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="session")
def grpc_channel(main_server):
    channel = grpc.insecure_channel(main_server.grpc_target)
    yield channel
    channel.close()


@pytest.fixture(scope="session")
def prediction_stub(grpc_channel):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceStub(grpc_channel)


@pytest.fixture(scope="session")
def model_stub(grpc_channel):
    from tensorflow_serving.apis import model_service_pb2_grpc

    return model_service_pb2_grpc.ModelServiceStub(grpc_channel)
