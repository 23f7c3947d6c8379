"""The request logger: sample, hand off, and write PredictionLog records off the serving path.

Serving never waits on logging. `RequestLogRouter.log` draws the sample, then appends a record
*builder* to a bounded queue (a deque the writer polls every 50 ms: no lock, no wake-up per
request); turning JSON arrays into protos, building the
PredictionLog, serializing and writing all happen on the logger's own writer thread. A full queue
drops the record and counts it (`:tensorflow:serving:request_log_count{outcome="dropped"}`).

Files rotate by size and age. The writer flushes after each drained batch, so a kill -9 loses
the queued records and at most leaves the current file with a torn last record, which
`beamline_serving.request_log.reader` skips. Like TF Serving's ServerRequestLogger, models with
identical settings share one logger.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from beamline_serving.request_log.config import FILE_SUFFIX, RequestLogConfig, RequestLogSettings
from beamline_serving.request_log.outcomes import OUTCOME_SUFFIX, outcome_line
from beamline_serving.request_log.tfrecord import frame
from beamline_serving.request_log.wire import field_bytes, field_varint, prediction_log

log = logging.getLogger("beamline.serving.request_log")

# What an RPC kind is logged as: the PredictionLog oneof field.
LOG_FIELDS = {
    "predict": "predict_log",
    "classify": "classify_log",
    "regress": "regress_log",
    "multi_inference": "multi_inference_log",
}
OUTCOMES = ("logged", "dropped", "error")
COUNTER_NAME = "/tensorflow/serving/request_log_count"
COUNTER_HELP = "The number of sampled requests by what became of their log record."
COUNTER_LABELS = ("model_name", "outcome")

# exclude -> (request, response), built on the writer thread: each a proto message, or its wire
# bytes with the excluded names already left out (a request's bytes without its model_spec).
Builder = Callable[[frozenset[str]], tuple[object, object]]


@dataclass
class _Pending:
    model_name: str
    version: int
    signature_name: str
    kind: str
    timestamp_secs: int
    build: Builder


# The writer wakes this often (records reach the file within about this delay) and writes at
# most this many records before looking at the clock again.
POLL_SECONDS = 0.05
WRITE_BATCH = 2048


def exclude_fields(message, names: frozenset[str]) -> None:
    """Removes the named inputs, example features and outputs from a request or response."""
    if not names:
        return
    for map_name in ("inputs", "outputs"):
        tensors = getattr(message, map_name, None)
        if tensors is not None and hasattr(tensors, "keys"):
            for name in names & set(tensors.keys()):
                del tensors[name]
    holder = getattr(message, "input", None)
    if holder is None or not hasattr(holder, "WhichOneof"):
        return
    which = holder.WhichOneof("kind")
    if which is None:
        return
    examples = getattr(holder, which)
    parts = list(examples.examples)
    if which == "example_list_with_context":
        parts.append(examples.context)
    for example in parts:
        features = example.features.feature
        for name in names & set(features.keys()):
            del features[name]


class RequestLogger:
    """One log destination (a filename prefix): its queue, writer thread and current file."""

    def __init__(self, config: RequestLogConfig, count: Callable[[str, str], None]) -> None:
        self.config = config
        self._count = count
        # A deque, not a queue.Queue: appending and popping are atomic and wake no one, so a
        # request never pays for a lock or a thread switch; the writer polls it instead.
        self._pending: collections.deque[_Pending] = collections.deque()
        self._capacity = max(1, config.queue_records)
        self._stop = threading.Event()
        self._exclude = frozenset(config.exclude_fields)
        # (model, version, signature) -> (LogMetadata bytes without timestamp, ModelSpec bytes)
        self._metadata: dict[tuple[str, int, str], tuple[bytes, bytes]] = {}
        self._log_file = _RotatingFile(config, FILE_SUFFIX)
        # Every request's outcome (status, latency), unsampled: request_log/outcomes.py.
        self._outcomes: collections.deque[bytes] = collections.deque()
        self._outcome_file = _RotatingFile(config, OUTCOME_SUFFIX)
        self._thread = threading.Thread(
            target=self._run,
            name=f"request-log:{os.path.basename(config.filename_prefix)}",
            daemon=True,
        )
        self._thread.start()

    # -- serving side ---------------------------------------------------------------------

    def submit(self, pending: _Pending) -> None:
        # The bound is approximate under concurrency (a few over at most), never unbounded.
        if len(self._pending) >= self._capacity:
            self._count(pending.model_name, "dropped")
        else:
            self._pending.append(pending)

    def submit_outcome(self, line: bytes) -> None:
        if len(self._outcomes) < self._capacity:
            self._outcomes.append(line)

    @property
    def files_written(self) -> list[str]:
        return self._log_file.paths

    # -- writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        interval = min(POLL_SECONDS, max(0.01, self.config.max_file_seconds / 4))
        while True:
            stopping = self._stop.wait(interval)
            batch = []
            while self._pending and len(batch) < WRITE_BATCH:
                batch.append(self._pending.popleft())
            if batch:
                self._write(batch)
            else:
                self._log_file.rotate_if_old()
            self._write_outcomes()
            if stopping and not self._pending and not self._outcomes:
                self._log_file.close()
                self._outcome_file.close()
                return

    def _write_outcomes(self) -> None:
        lines = []
        while self._outcomes and len(lines) < WRITE_BATCH:
            lines.append(self._outcomes.popleft())
        if lines:
            data = b"".join(lines)
            try:
                self._outcome_file.write(data)
                self._outcome_file.flush()
            except OSError as exc:
                log.error("Cannot write request outcomes %s: %s", self._outcome_file.path, exc)
                self._outcome_file.close()
        self._outcome_file.rotate_if_old()

    def _write(self, batch: list[_Pending]) -> None:
        chunks = []
        for pending in batch:
            try:
                chunks.append((pending.model_name, frame(self._record(pending))))
            except Exception:  # noqa: BLE001 - a bad record must not stop the writer
                log.exception("Could not build the log record of a %s request", pending.kind)
                self._count(pending.model_name, "error")
        for model_name, data in chunks:
            try:
                self._log_file.write(data)
                self._count(model_name, "logged")
            except OSError as exc:
                log.error("Cannot write request log %s: %s", self._log_file.path, exc)
                self._count(model_name, "error")
                self._log_file.close()
        try:
            self._log_file.flush()
        except OSError as exc:
            log.error("Cannot flush request log %s: %s", self._log_file.path, exc)
        self._log_file.rotate_if_old()

    def _spec_and_metadata(self, pending: _Pending) -> tuple[bytes, bytes]:
        key = (pending.model_name, pending.version, pending.signature_name)
        found = self._metadata.get(key)
        if found is None:
            from tensorflow_serving.apis import logging_pb2

            meta = logging_pb2.LogMetadata()
            meta.model_spec.name = pending.model_name
            meta.model_spec.version.value = pending.version
            meta.model_spec.signature_name = pending.signature_name
            meta.sampling_config.sampling_rate = self.config.sampling_rate
            meta.sampling_config.attributes = self.config.sampling_attributes
            meta.saved_model_tags.append("serve")
            found = self._metadata[key] = (
                meta.model_spec.SerializeToString(),
                meta.SerializeToString(),
            )
        return found

    def _record(self, pending: _Pending) -> bytes:
        spec, metadata = self._spec_and_metadata(pending)
        request, response = pending.build(self._exclude)
        if not isinstance(request, bytes):
            exclude_fields(request, self._exclude)
            request.ClearField("model_spec")
            request = request.SerializeToString()
        if not isinstance(response, bytes):
            exclude_fields(response, self._exclude)
            response = response.SerializeToString()
        # Requests carry the spec that resolved to this version; log the one that answered.
        return prediction_log(
            metadata + field_varint(4, pending.timestamp_secs),
            pending.kind,
            field_bytes(1, spec) + request,
            response,
        )

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, closes the file, stops the thread."""
        self._stop.set()
        self._thread.join(timeout)


class _RotatingFile:
    """A logger's current file of one kind: opened on the first write, rotated by size and
    age, fsynced when closed."""

    def __init__(self, config: RequestLogConfig, suffix: str) -> None:
        self._config = config
        self._suffix = suffix
        self._file = None
        self.path: str | None = None
        self._opened = 0.0
        self._bytes = 0
        self._sequence = 0
        self.paths: list[str] = []

    def write(self, data: bytes) -> None:
        # Age is checked here as well as on the writer's idle poll: a record that arrives
        # after the limit, before the poll notices, belongs in a new file, not the old one.
        self.rotate_if_old()
        if self._file is not None and (
            self._bytes + len(data) > self._config.max_file_bytes and self._bytes > 0
        ):
            self.close()
        if self._file is None:
            self._open()
        self._file.write(data)
        self._bytes += len(data)

    def _open(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._sequence += 1
        path = (
            f"{self._config.filename_prefix}-{stamp}-{os.getpid()}-{self._sequence:05d}"
            f"{self._suffix}"
        )
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - held open across batches
        self.path = path
        self._opened = time.monotonic()
        self._bytes = 0
        self.paths.append(path)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def rotate_if_old(self) -> None:
        if (
            self._file is not None
            and time.monotonic() - self._opened >= self._config.max_file_seconds
        ):
            self.close()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            log.error("Cannot close request log %s: %s", self.path, exc)
        self._file = None


class RequestLogRouter:
    """Routes each request to its model's logger (or none), sampling first."""

    def __init__(
        self,
        settings: RequestLogSettings,
        count: Callable[[str, str], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._count = count or (lambda model, outcome: None)
        self._rng = rng
        self._lock = threading.Lock()
        self._by_model: dict[str, RequestLogger | None] = {}
        self._by_config: dict[RequestLogConfig, RequestLogger] = {}

    def reconfigure(self, settings: RequestLogSettings) -> None:
        """New settings (a changed model config): routes are recomputed on the next request;
        loggers whose settings did not change keep their files."""
        with self._lock:
            self.settings = settings
            self._by_model = {}

    def logger_for(self, model_name: str) -> RequestLogger | None:
        found = self._by_model.get(model_name, False)
        if found is not False:
            return found
        with self._lock:
            config = self.settings.for_model(model_name)
            logger = None
            if config is not None:
                logger = self._by_config.get(config)
                if logger is None:
                    logger = self._by_config[config] = RequestLogger(config, self._count)
            self._by_model[model_name] = logger
            return logger

    def log(
        self,
        model_name: str,
        version: int,
        signature_name: str,
        kind: str,
        build: Builder,
    ) -> None:
        """Samples the request and, if chosen, queues its record; never blocks, never raises."""
        logger = self.logger_for(model_name)
        if logger is None or self._rng() >= logger.config.sampling_rate:
            return
        logger.submit(_Pending(model_name, version, signature_name, kind, int(time.time()), build))

    def outcome(
        self, model_name: str, version: int, api: str, status: str, micros: float
    ) -> None:
        """Queues one answered request's outcome (every request, unsampled; never blocks)."""
        logger = self.logger_for(model_name)
        if logger is not None:
            logger.submit_outcome(
                outcome_line(int(time.time() * 1000), model_name, version, api, status, micros)
            )

    def close(self) -> None:
        with self._lock:
            loggers = list(self._by_config.values())
        for logger in loggers:
            logger.close()
