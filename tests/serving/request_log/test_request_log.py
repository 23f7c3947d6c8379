"""Request logger: real PredictionLog records in real TFRecord files, read back by TensorFlow."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from tensorflow_serving.apis import classification_pb2, predict_pb2

from beamline_serving.request_log.config import (
    FILE_SUFFIX,
    RequestLogConfig,
    RequestLogConfigError,
    RequestLogSettings,
    parse_model_config_text,
    settings_from_flags,
)
from beamline_serving.request_log.logger import RequestLogRouter, _RotatingFile
from beamline_serving.request_log.reader import LogScan, log_files, read_prediction_logs
from beamline_serving.request_log.tfrecord import ReadOutcome, frame, read_records


def _predict_pair(value: float):
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([value], tf.float32))
    request.inputs["ssn"].CopyFrom(tf.make_tensor_proto([b"123-45-6789"]))
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(tf.make_tensor_proto([value * 2], tf.float32))
    return request, response


class Counts:
    def __init__(self):
        self.cells: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()

    def __call__(self, model: str, outcome: str) -> None:
        with self.lock:
            self.cells[(model, outcome)] = self.cells.get((model, outcome), 0) + 1


class HeldWriter:
    """A record builder that holds the writer thread until released: what queues behind it
    meets the queue's bounds."""

    def __init__(self) -> None:
        self.release, self.held = threading.Event(), threading.Event()

    def __call__(self, _):
        self.held.set()
        self.release.wait(300)
        return _predict_pair(1.0)


def _router(tmp_path, counts=None, **config):
    prefix = str(tmp_path / "logs" / "m")
    settings = RequestLogSettings(per_model={"m": RequestLogConfig(prefix, **config)})
    return RequestLogRouter(settings, counts)


def test_frames_are_tfrecords_tensorflow_reads(tmp_path):
    import tensorflow as tf

    path = tmp_path / "f.tfrecord"
    path.write_bytes(frame(b"one") + frame(b"") + frame(b"three" * 100))
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == [
        b"one",
        b"",
        b"three" * 100,
    ]


def test_torn_tail_and_corruption_stop_reading_but_keep_earlier_records():
    good = frame(b"a") + frame(b"b")
    for cut in range(1, len(frame(b"c"))):
        outcome = ReadOutcome()
        assert list(read_records(io.BytesIO(good + frame(b"c")[:cut]), outcome)) == [b"a", b"b"]
        assert outcome.torn_tail and not outcome.corrupt
    flipped = bytearray(good + frame(b"c"))
    flipped[-3] ^= 0xFF
    outcome = ReadOutcome()
    assert list(read_records(io.BytesIO(bytes(flipped)), outcome)) == [b"a", b"b"]
    assert outcome.corrupt


def test_logged_predict_is_a_standard_prediction_log(tmp_path):
    counts = Counts()
    router = _router(tmp_path, counts, exclude_fields=("ssn",))
    before = int(time.time())
    router.log("m", 7, "serving_default", "predict", lambda _: _predict_pair(1.5))
    router.log("other", 1, "serving_default", "predict", lambda _: _predict_pair(9.0))  # not logged
    router.close()
    [record] = list(read_prediction_logs(tmp_path / "logs"))
    meta = record.log_metadata
    assert (meta.model_spec.name, meta.model_spec.version.value) == ("m", 7)
    assert meta.model_spec.signature_name == "serving_default"
    assert meta.sampling_config.sampling_rate == 1.0
    assert before <= meta.timestamp_secs <= int(time.time())
    assert record.WhichOneof("log_type") == "predict_log"
    assert set(record.predict_log.request.inputs) == {"x"}  # ssn excluded
    assert record.predict_log.response.outputs["y"].float_val == [3.0]
    assert counts.cells == {("m", "logged"): 1}


def test_classify_features_can_be_excluded(tmp_path):
    def build(_):
        request = classification_pb2.ClassificationRequest()
        features = request.input.example_list.examples.add().features.feature
        features["a"].float_list.value.append(1.0)
        features["ssn"].bytes_list.value.append(b"x")
        response = classification_pb2.ClassificationResponse()
        response.result.classifications.add().classes.add(label="k", score=0.9)
        return request, response

    router = _router(tmp_path, exclude_fields=("ssn",))
    router.log("m", 1, "classification", "classify", build)
    router.close()
    [record] = list(read_prediction_logs(tmp_path / "logs"))
    [example] = record.classify_log.request.input.example_list.examples
    assert set(example.features.feature) == {"a"}
    assert record.classify_log.response.result.classifications[0].classes[0].label == "k"


def test_sampling_rate_zero_logs_nothing_and_half_logs_about_half(tmp_path):
    import random

    router = _router(tmp_path / "zero", sampling_rate=0.0)
    for _ in range(50):
        router.log("m", 1, "", "predict", lambda _: _predict_pair(1.0))
    router.close()
    assert log_files(tmp_path / "zero") == []

    rng = random.Random(3)
    router = RequestLogRouter(
        RequestLogSettings(per_model={"m": RequestLogConfig(str(tmp_path / "half" / "m"), 0.5)}),
        rng=rng.random,
    )
    for _ in range(400):
        router.log("m", 1, "", "predict", lambda _: _predict_pair(1.0))
    router.close()
    logged = sum(1 for _ in read_prediction_logs(tmp_path / "half"))
    assert 150 < logged < 250


def test_full_queue_drops_and_counts_without_blocking(tmp_path):
    counts = Counts()
    slow_build = HeldWriter()
    router = _router(tmp_path, counts, queue_records=2)
    router.log("m", 1, "", "predict", slow_build)  # the writer holds this one
    assert slow_build.held.wait(120), "the writer never took the first record"
    for _ in range(10):
        router.log("m", 1, "", "predict", slow_build)
    assert counts.cells.get(("m", "dropped"), 0) >= 7
    slow_build.release.set()
    router.close()
    assert counts.cells[("m", "logged")] + counts.cells[("m", "dropped")] == 11


def test_files_rotate_by_size_and_by_age(tmp_path):
    router = _router(tmp_path / "size", max_file_bytes=600)
    for i in range(20):
        router.log("m", 1, "", "predict", lambda _, i=i: _predict_pair(float(i)))
    router.close()
    assert len(log_files(tmp_path / "size")) > 3
    values = sorted(
        r.predict_log.request.inputs["x"].float_val[0]
        for r in read_prediction_logs(tmp_path / "size")
    )
    assert values == [float(i) for i in range(20)]

    router = _router(tmp_path / "age", max_file_seconds=0.2)
    router.log("m", 1, "", "predict", lambda _: _predict_pair(1.0))
    deadline = time.monotonic() + 120
    while not log_files(tmp_path / "age"):  # the writer opened the first file
        assert time.monotonic() < deadline, "the writer never opened a file"
        time.sleep(0.05)
    opened = time.monotonic()
    # The condition itself: the file is past its age limit. Whether or not the writer's idle
    # poll has closed it yet, the next record goes to a new file (names carry a sequence).
    while time.monotonic() - opened <= 0.2:
        time.sleep(0.05)
    router.log("m", 1, "", "predict", lambda _: _predict_pair(2.0))
    router.close()
    assert len(log_files(tmp_path / "age")) == 2


def test_a_record_after_the_age_limit_opens_a_new_file_before_any_poll(tmp_path):
    # No writer thread: only the write path decides, as when a request arrives between the
    # limit passing and the writer's idle poll closing the file.
    config = RequestLogConfig(str(tmp_path / "m"), max_file_seconds=0.1)
    current = _RotatingFile(config, FILE_SUFFIX)
    current.write(frame(b"first"))
    opened = time.monotonic()
    while time.monotonic() - opened <= 0.1:
        time.sleep(0.02)
    current.write(frame(b"second"))
    current.close()
    assert len(current.paths) == 2
    records = []
    for path in current.paths:
        with open(path, "rb") as stream:
            records.append(list(read_records(stream)))
    assert records == [[b"first"], [b"second"]]


WRITER = """
import sys
from beamline_serving.request_log.config import RequestLogConfig, RequestLogSettings
from beamline_serving.request_log.logger import RequestLogRouter, _RotatingFile
from tensorflow_serving.apis import predict_pb2

router = RequestLogRouter(RequestLogSettings(per_model={"m": RequestLogConfig(sys.argv[1])}))
def build(i):
    request = predict_pb2.PredictRequest()
    request.inputs["x"].float_val.append(float(i))
    request.inputs["x"].string_val.append(b"p" * 4000)
    return request, predict_pb2.PredictResponse()
print("ready", flush=True)
i = 0
while True:
    router.log("m", 1, "", "predict", lambda _, i=i: build(i))
    i += 1
"""


def test_kill_minus_nine_leaves_readable_logs(tmp_path):
    prefix = tmp_path / "logs" / "m"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(prefix)],
        stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
    )
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 60
    while sum(os.path.getsize(f) for f in log_files(tmp_path / "logs")) < 200_000:
        assert time.monotonic() < deadline, "the writer wrote nothing"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    scan = LogScan()
    values = [
        r.predict_log.request.inputs["x"].float_val[0]
        for r in read_prediction_logs(tmp_path / "logs", scan)
    ]
    assert len(values) > 10
    assert values == [float(i) for i in range(len(values))]  # in order, none lost before the end
    assert set(scan.damaged) <= set(scan.files[-1:])  # at most the file being written


def test_logging_config_in_a_model_config_file():
    text = """
    model_config_list { config {
      name: 'penguin' base_path: '/models/penguin' model_platform: 'tensorflow'
      logging_config {
        sampling_config { sampling_rate: 0.25 }
        log_collector_config { type: 'tfrecord' filename_prefix: '/var/log/req/penguin' }
      }
    } config { name: 'quiet' base_path: '/models/quiet' } }
    """
    configs = parse_model_config_text(text, "models.config")
    assert configs == {"penguin": RequestLogConfig("/var/log/req/penguin", sampling_rate=0.25)}


@pytest.mark.parametrize(
    "logging, message",
    [
        ("log_collector_config { type: 'kafka' filename_prefix: '/x' }", "'kafka'"),
        ("log_collector_config { type: 'tfrecord' }", "filename_prefix"),
        (
            "sampling_config { sampling_rate: 1.5 } log_collector_config { filename_prefix: '/x' }",
            "outside [0, 1]",
        ),
        ("sampling_config { sampling_rate: 0.5 }", "no log_collector_config"),
    ],
)
def test_bad_logging_config_is_one_clear_error(logging, message):
    text = (
        "model_config_list { config { name: 'penguin' base_path: '/m' "
        f"logging_config {{ {logging} }} }} }}"
    )
    with pytest.raises(RequestLogConfigError, match="models.config: model penguin") as exc:
        parse_model_config_text(text, "models.config")
    assert message in str(exc.value)


def test_flags_log_every_model_under_the_directory(tmp_path):
    settings = settings_from_flags(tmp_path, 0.1, exclude_fields=("ssn",))
    config = settings.for_model("penguin")
    assert config.filename_prefix == str(tmp_path / "penguin")
    assert config.sampling_rate == 0.1 and config.exclude_fields == ("ssn",)
    with pytest.raises(RequestLogConfigError, match="--request_log_sample_rate"):
        settings_from_flags(tmp_path, 2.0)
    (tmp_path / "file").write_text("")
    with pytest.raises(RequestLogConfigError, match="not a directory"):
        settings_from_flags(tmp_path / "file", 1.0)


def test_outcome_lines_round_trip_and_a_torn_or_foreign_line_is_skipped(tmp_path):
    from beamline_serving.request_log.outcomes import outcome_line, parse_outcome, read_outcomes

    line = outcome_line(1_700_000_000_123, "pen\tguin", 4, "predict", "OK", 812.7)
    outcome = parse_outcome(line)
    assert outcome is not None and outcome.ok
    assert (outcome.model_name, outcome.version, outcome.latency_us) == ("pen guin", 4, 812)
    failed = outcome_line(1_700_000_000_200, "penguin", 5, "classify", "INVALID_ARGUMENT", 90)
    path = tmp_path / "penguin-20261202T000000Z-1-00001.outcomes.tsv"
    path.write_bytes(line + b"garbage\n" + failed + failed[:-7])  # torn last line
    read = list(read_outcomes(tmp_path))
    assert [(o.version, o.status) for o in read] == [(4, "OK"), (5, "INVALID_ARGUMENT")]
    assert [o.version for o in read_outcomes(tmp_path, since_ms=1_700_000_000_150)] == [5]
    assert [o.version for o in read_outcomes(tmp_path, until_ms=1_700_000_000_150)] == [4]
