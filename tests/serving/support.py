"""Test and benchmark helpers for `beamline serve`: a server subprocess and small models.

`running_server()` starts the real server (`python -m beamline serve ...`) on free loopback ports
and waits until it answers, so any test (including an end-to-end one over a pushed pipeline
model) can drive it with plain HTTP and the `tensorflow_serving.apis` gRPC stubs:

    with running_server(model_name="penguin", model_base_path=push_dir) as server:
        requests.post(f"{server.rest_url}/v1/models/penguin:predict", json={...})
        grpc.insecure_channel(server.grpc_target)

`write_test_model()` writes a small SavedModel shaped like the pipeline's exports (raw features in,
class scores out; `classification` and `regression` signatures over serialized tf.Examples; a
warm-up file). Nothing here imports TensorFlow at module import time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from beamline.settings import TF_ENVIRONMENT

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How Python starts the server through the framework's command (on its own:
# beamline_serving.core.flags.STANDALONE_COMMAND).
BEAMLINE_SERVE = ("-m", "beamline", "serve")

# `beamline serve` says this (and exits) when a port is taken (serving/server.py).
LOST_PORT = "Cannot listen for "
PORT_RETRIES = 5
# How long a server may take to answer after start: a hang guard, not a speed limit. On 2 cores
# shared with other work, TensorFlow's import plus a load (plus a REST worker's) took 5 minutes.
READY_TIMEOUT = 900.0

CLASS_NAMES = ("Adelie", "Chinstrap", "Gentoo")
ISLANDS = ("Biscoe", "Dream", "Torgersen")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may take it before
    the server binds it: start_server retries on new ports when that happens)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A running `beamline serve` subprocess."""

    process: subprocess.Popen
    rest_port: int
    grpc_port: int
    log_path: Path
    args: list[str] = field(default_factory=list)
    ready_model: str | None = None
    # Starts the same server again on new free ports (set by start_server).
    relaunch: Callable[[], ServerProcess] | None = None
    port_retries: int = PORT_RETRIES

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Waits until the server answers (see start_server); raises RuntimeError if it dies."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None and self._lost_a_port():
                self._take(self.relaunch())
                self.port_retries -= 1
                continue
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"beamline serve exited with code {self.process.returncode}:\n{self.log()}"
                )
            if _answers(self, self.ready_model):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"beamline serve was not ready in {timeout}s:\n{self.log()}")
            time.sleep(0.2)

    def _lost_a_port(self) -> bool:
        """The server exited because a port picked for it was taken meanwhile (EADDRINUSE)."""
        return (
            self.relaunch is not None
            and self.port_retries > 0
            and LOST_PORT in self.log()
        )

    def _take(self, other: ServerProcess) -> None:
        self.process, self.log_path, self.args = other.process, other.log_path, other.args
        self.rest_port, self.grpc_port = other.rest_port, other.grpc_port

    def stop(self, timeout: float = 120.0) -> int:
        """Stops the server (SIGTERM, then SIGKILL if it hangs); returns its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def start_server(
    *,
    model_name: str | None = None,
    model_base_path: str | os.PathLike | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    ready_model: str | None = None,
    timeout: float = READY_TIMEOUT,
    log_dir: str | os.PathLike | None = None,
    wait: bool = True,
    entry: Sequence[str] = BEAMLINE_SERVE,
) -> ServerProcess:
    """Starts `beamline serve` on free loopback ports and (unless `wait=False`) waits until it
    answers: until `ready_model` (default `model_name`) has an AVAILABLE version, or, without a
    model to wait for, until the REST port answers. Raises RuntimeError with the server's log if
    it exits or is not ready in time. With `wait=False`, call `server.wait_ready()` later (lets
    several servers pay their TensorFlow import at the same time). `entry`: how Python starts
    it: `beamline serve` (default) or the server on its own
    (beamline_serving.core.flags.STANDALONE_COMMAND).
    """
    def launch() -> ServerProcess:
        return _launch(entry, model_name, model_base_path, args, env, log_dir)

    server = launch()
    server.ready_model = ready_model if ready_model is not None else model_name
    server.relaunch = launch
    if wait:
        server.wait_ready(timeout)
    return server


def _launch(entry, model_name, model_base_path, args, env, log_dir) -> ServerProcess:
    rest_port, grpc_port = free_port(), free_port()
    while grpc_port == rest_port:
        grpc_port = free_port()
    cmd = [sys.executable, *entry, f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
    if model_name is not None:
        cmd.append(f"--model_name={model_name}")
    if model_base_path is not None:
        cmd.append(f"--model_base_path={model_base_path}")
    cmd.extend(args)
    full_env = {**os.environ, **TF_ENVIRONMENT, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), full_env.get("PYTHONPATH", "")) if p
    )
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="beamline-serve-"))
    log_path = log_dir / f"serve-{rest_port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env, cwd=str(PROJECT_ROOT)
        )
    return ServerProcess(process, rest_port, grpc_port, log_path, cmd)


def _answers(server: ServerProcess, model: str | None) -> bool:
    path = f"/v1/models/{model}" if model else "/v1/models/_readiness_probe_"
    try:
        with urllib.request.urlopen(server.rest_url + path, timeout=2) as resp:
            return b'"AVAILABLE"' in resp.read()
    except urllib.error.HTTPError as exc:
        # Any JSON answer means the REST port is up; without a model to wait for that is enough.
        return model is None and exc.code in (400, 404)
    except OSError:
        return False


@contextlib.contextmanager
def running_server(**kwargs) -> Iterator[ServerProcess]:
    """`start_server(**kwargs)` as a context manager that stops the server on exit."""
    server = start_server(**kwargs)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# Test models
# ---------------------------------------------------------------------------------------------

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def write_test_model(
    version_dir: str | os.PathLike,
    version: int,
    *,
    warmup: bool = True,
    hidden_units: int = 0,
    batching_params: str | None = None,
) -> Path:
    """Writes a small penguin-like SavedModel to `version_dir` (which must not exist).

    Signatures:
    - `serving_default` (predict): raw features `bill_length_mm` float32 [-1], `flipper_length_mm`
      int64 [-1], `island` string [-1] -> `scores` float32 [-1, 3], `model_version` int64 [-1].
    - `classification` (classify): `inputs` serialized tf.Example [-1] -> `classes`, `scores`.
    - `regression` (regress): `inputs` -> `outputs` float32 [-1] = 2 * bill_length_mm + version.
    - `matrix` (predict): `x` float32 [-1, 2] -> `y` = 2 * x (one input, one output).
    - `bytes` (predict): `image_bytes` string [-1] -> `length` int32, `echo_bytes` string.
    `hidden_units` > 0 adds three dense layers of that width (a heavier model for benchmarks).
    `saved_model.pb` is written last, as TFX's Pusher does.
    """
    import tensorflow as tf

    version_dir = Path(version_dir)
    tmp = version_dir.parent / f".tmp-{version_dir.name}-{os.getpid()}"
    module = _build_module(tf, version, hidden_units)
    signatures = {
        "serving_default": module.predict,
        "classification": module.classify,
        "regression": module.regress,
        "matrix": module.matrix,
        "bytes": module.bytes_fn,
    }
    tf.saved_model.save(module, str(tmp), signatures=signatures)
    _set_method_names(tmp, {"classification": CLASSIFY_METHOD, "regression": REGRESS_METHOD})
    if warmup:
        write_warmup_requests(tmp / "assets.extra" / "tf_serving_warmup_requests")
    if batching_params is not None:
        (tmp / "batching_params.pbtxt").write_text(batching_params, encoding="utf-8")
    # Copy everything but saved_model.pb, then the .pb: a half-written version is never complete.
    pb = (tmp / "saved_model.pb").read_bytes()
    (tmp / "saved_model.pb").unlink()
    tmp.rename(version_dir)
    (version_dir / "saved_model.pb").write_bytes(pb)
    return version_dir


def _build_module(tf, version: int, hidden_units: int):
    class PenguinLike(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.version = tf.constant(version, tf.int64)
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(ISLANDS), tf.constant([0, 1, 2], tf.int64)
                ),
                default_value=3,
            )
            rng = tf.random.Generator.from_seed(version)
            width = 6
            self.layers = []
            if hidden_units:
                for _ in range(3):
                    self.layers.append(
                        (
                            tf.Variable(rng.normal([width, hidden_units]) * 0.1),
                            tf.Variable(tf.zeros([hidden_units])),
                        )
                    )
                    width = hidden_units
            self.out_w = tf.Variable(rng.normal([width, 3]) * 0.1)
            self.out_b = tf.Variable(tf.constant([0.1, 0.0, -0.1]))

        def _scores(self, bill, flipper, island):
            island_idx = self.table.lookup(island)
            features = tf.concat(
                [
                    tf.stack([bill / 50.0, tf.cast(flipper, tf.float32) / 200.0], axis=1),
                    tf.one_hot(island_idx, 4),
                ],
                axis=1,
            )
            h = features
            for w, b in self.layers:
                h = tf.nn.relu(tf.matmul(h, w) + b)
            return tf.nn.softmax(tf.matmul(h, self.out_w) + self.out_b)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="bill_length_mm"),
                tf.TensorSpec([None], tf.int64, name="flipper_length_mm"),
                tf.TensorSpec([None], tf.string, name="island"),
            ]
        )
        def predict(self, bill_length_mm, flipper_length_mm, island):
            scores = self._scores(bill_length_mm, flipper_length_mm, island)
            return {
                "scores": scores,
                "model_version": tf.fill(tf.shape(bill_length_mm), self.version),
            }

        def _parse(self, serialized):
            return tf.io.parse_example(
                serialized,
                {
                    "bill_length_mm": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
                    "flipper_length_mm": tf.io.FixedLenFeature([], tf.int64, default_value=0),
                    "island": tf.io.FixedLenFeature([], tf.string, default_value=""),
                },
            )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            f = self._parse(inputs)
            scores = self._scores(f["bill_length_mm"], f["flipper_length_mm"], f["island"])
            classes = tf.tile(tf.constant([list(CLASS_NAMES)]), [tf.shape(inputs)[0], 1])
            return {"classes": classes, "scores": scores}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs):
            f = self._parse(inputs)
            return {"outputs": f["bill_length_mm"] * 2.0 + tf.cast(self.version, tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def matrix(self, x):
            return {"y": x * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def bytes_fn(self, image_bytes):
            return {"length": tf.strings.length(image_bytes), "echo_bytes": image_bytes}

    return PenguinLike()


def _set_method_names(saved_model_dir: Path, methods: dict[str, str]) -> None:
    # tf.saved_model.save marks every signature `predict`; TF1 exports (and TF Serving's
    # classify/regress APIs) use other method names, so set them on the proto.
    from tensorflow.core.protobuf import saved_model_pb2

    path = saved_model_dir / "saved_model.pb"
    proto = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for meta_graph in proto.meta_graphs:
        for name, method in methods.items():
            if name in meta_graph.signature_def:
                meta_graph.signature_def[name].method_name = method
    path.write_bytes(proto.SerializeToString())


def example_rows() -> list[dict]:
    """Raw feature rows the test model accepts."""
    return [
        {"bill_length_mm": 39.1, "flipper_length_mm": 181, "island": "Torgersen"},
        {"bill_length_mm": 46.5, "flipper_length_mm": 195, "island": "Dream"},
        {"bill_length_mm": 49.9, "flipper_length_mm": 213, "island": "Biscoe"},
    ]


def write_warmup_requests(path: str | os.PathLike, *, broken: bool = False) -> None:
    """Writes TF Serving warm-up requests (a TFRecord of PredictionLog) for the test model.

    `broken=True` writes a request with an unknown input, so replaying it fails the load.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import (
        classification_pb2,
        predict_pb2,
        prediction_log_pb2,
    )

    rows = example_rows()
    predict = predict_pb2.PredictRequest()
    predict.model_spec.name = "warmup"
    predict.inputs["bill_length_mm"].CopyFrom(
        tf.make_tensor_proto([r["bill_length_mm"] for r in rows], tf.float32)
    )
    predict.inputs["flipper_length_mm"].CopyFrom(
        tf.make_tensor_proto([r["flipper_length_mm"] for r in rows], tf.int64)
    )
    predict.inputs["island" if not broken else "no_such_input"].CopyFrom(
        tf.make_tensor_proto([r["island"].encode() for r in rows], tf.string)
    )
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "warmup"
    classify.model_spec.signature_name = "classification"
    for row in rows:
        classify.input.example_list.examples.add().CopyFrom(make_example(row))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        log = prediction_log_pb2.PredictionLog()
        log.predict_log.request.CopyFrom(predict)
        writer.write(log.SerializeToString())
        log = prediction_log_pb2.PredictionLog()
        log.classify_log.request.CopyFrom(classify)
        writer.write(log.SerializeToString())


def make_example(row: dict):
    """A tf.train.Example from a dict of scalar raw features."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    for name, value in row.items():
        feature = example.features.feature[name]
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        elif isinstance(value, float):
            feature.float_list.value.append(value)
        else:
            feature.int64_list.value.append(value)
    return example


PENGUIN_TEST_SCHEMA = """
feature {
  name: "bill_length_mm"
  type: FLOAT
  float_domain { min: 10.0 max: 100.0 }
  presence { min_fraction: 1.0 min_count: 1 }
  shape { dim { size: 1 } }
}
feature {
  name: "flipper_length_mm"
  type: INT
  int_domain { min: 100 max: 300 }
  presence { min_fraction: 1.0 min_count: 1 }
}
feature {
  name: "island"
  type: BYTES
  domain: "island"
  presence { min_fraction: 1.0 min_count: 1 }
}
feature {
  name: "species"
  type: BYTES
  domain: "species"
  presence { min_fraction: 1.0 min_count: 1 }
  not_in_environment: "SERVING"
}
string_domain { name: "island" value: "Biscoe" value: "Dream" value: "Torgersen" }
string_domain { name: "species" value: "Adelie" value: "Chinstrap" value: "Gentoo" }
default_environment: "TRAINING"
default_environment: "SERVING"
"""
