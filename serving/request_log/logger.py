"""The request logger: sample, hand off, and write PredictionLog records off the serving path.

Serving never waits on logging. `RequestLogRouter.log` draws the sample, then appends a record
*builder* to a queue (a deque the writer polls every 50 ms: no wake-up per request); turning
JSON arrays into protos, building the PredictionLog, serializing and writing all happen on the
logger's own writer thread. The queue is bounded in records and in the bytes its builders hold
(the request's decoded arrays and the answer): beyond either, the record is dropped and counted
(`:tensorflow:serving:request_log_count{outcome="dropped"}`), as are records the disk has no
room for (the log's budget, or the filesystem's free-space floor: request_log/retention.py).

Files rotate by size and age. The writer flushes after each drained batch, so a kill -9 loses
the queued records and at most leaves the current file with a torn last record, which
`beamline_serving.request_log.reader` skips. Like TF Serving's ServerRequestLogger, models with
identical settings share one logger.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from beamline_serving.request_log.config import FILE_SUFFIX, RequestLogConfig, RequestLogSettings
from beamline_serving.request_log.outcomes import OUTCOME_SUFFIX, outcome_line
from beamline_serving.request_log.retention import (
    FreeSpaceProbe,
    LogRetention,
    create_private_file,
    disk_free_bytes,
    make_private_dirs,
)
from beamline_serving.request_log.tfrecord import frame
from beamline_serving.request_log.wire import field_bytes, field_varint, prediction_log

log = logging.getLogger("beamline.serving.request_log")

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
    nbytes: int  # what `build` holds in memory until the record is written, estimated


# A queued record costs at least this much besides its arrays (the record, the builder, the
# answer's objects), so the byte bound also counts many tiny records.
MIN_RECORD_BYTES = 1024
# How deep `held_bytes` looks into nested containers (requests are dicts of arrays).
_HELD_DEPTH = 4


def held_bytes(value: object, depth: int = 0) -> int:
    """About how many bytes `value` keeps in memory: arrays (numpy's nbytes, plus the strings
    an object array points to), bytes and strings, and the dicts, sequences and dataclasses
    holding them."""
    if value is None:
        return 0
    if isinstance(value, (bytes, bytearray, str, memoryview)):
        return len(value)
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        dtype = getattr(value, "dtype", None)
        if getattr(dtype, "hasobject", False):
            try:  # strings of a string tensor: the pointers are in nbytes, the text is not
                return nbytes + sum(map(len, value.ravel()))
            except TypeError:
                return nbytes + 64 * value.size
        return nbytes
    if depth >= _HELD_DEPTH:
        return sys.getsizeof(value)
    if isinstance(value, Mapping):
        return sum(held_bytes(k, depth + 1) + held_bytes(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(held_bytes(v, depth + 1) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(
            held_bytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        )
    return sys.getsizeof(value)


class LogFull(Exception):
    """The log's budget cannot hold a new file, even with every closed file deleted."""


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

    def __init__(
        self,
        config: RequestLogConfig,
        count: Callable[[str, str], None],
        free_space: FreeSpaceProbe = disk_free_bytes,
    ) -> None:
        self.config = config
        self._count = count
        self._free_space = free_space
        # A deque, not a queue.Queue: appending and popping are atomic and wake no one, so a
        # request never waits for the writer; the writer polls it instead.
        self._pending: collections.deque[_Pending] = collections.deque()
        self._capacity = max(1, config.queue_records)
        # The bytes the queued records hold: a read-add-write shared by the serving threads and
        # the writer, so under a lock (held for an addition, never across any I/O).
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self._stop = threading.Event()
        self._exclude = frozenset(config.exclude_fields)
        # (model, version, signature) -> (LogMetadata bytes without timestamp, ModelSpec bytes)
        self._metadata: dict[tuple[str, int, str], tuple[bytes, bytes]] = {}
        self._retention = LogRetention(config.filename_prefix, config.budget, config.file_bytes)
        self._log_file = _RotatingFile(config, FILE_SUFFIX, self._make_room)
        # Every request's outcome (status, latency), unsampled: request_log/outcomes.py.
        self._outcomes: collections.deque[bytes] = collections.deque()
        self._outcome_file = _RotatingFile(config, OUTCOME_SUFFIX, self._make_room)
        self._paused: str | None = None  # why nothing is being written, once warned
        self._thread = threading.Thread(
            target=self._run,
            name=f"request-log:{os.path.basename(config.filename_prefix)}",
            daemon=True,
        )
        self._thread.start()

    # -- serving side ---------------------------------------------------------------------

    def submit(self, pending: _Pending) -> None:
        # The record bound is approximate under concurrency (a few over at most); the byte
        # bound is exact. An empty queue takes any one record: it was in memory anyway.
        if len(self._pending) >= self._capacity or not self._reserve(pending.nbytes):
            self._count(pending.model_name, "dropped")
        else:
            self._pending.append(pending)

    def _reserve(self, nbytes: int) -> bool:
        with self._bytes_lock:
            queued = self._queued_bytes
            if queued and queued + nbytes > self.config.queue_bytes:
                return False
            self._queued_bytes = queued + nbytes
            return True

    def _release(self, batch: list[_Pending]) -> None:
        nbytes = sum(p.nbytes for p in batch)
        with self._bytes_lock:
            self._queued_bytes -= nbytes

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
                try:
                    self._write(batch)
                finally:
                    self._release(batch)
            else:
                self._log_file.rotate_if_old()
            self._write_outcomes()
            if stopping and not self._pending and not self._outcomes:
                self._log_file.close()
                self._outcome_file.close()
                return

    def _make_room(self, reserve: int) -> bool:
        """Before a new file: the oldest files of the log deleted until it fits the budget."""
        writing = [f.path for f in (self._log_file, self._outcome_file) if f.is_open]
        return self._retention.make_room(reserve, writing)

    def _disk_has_room(self, nbytes: int) -> bool:
        """Whether `nbytes` more keep the filesystem above the free-space floor (a probe that
        fails says yes: the write itself then reports the error)."""
        floor = self.config.budget.min_free_bytes
        if not floor:
            return True
        try:
            free = self._free_space(self._retention.directory)
        except OSError as exc:
            log.error("Cannot tell the free space under %s: %s", self._retention.directory, exc)
            return True
        if free - nbytes >= floor:
            return True
        self._pause(
            f"the filesystem of {self._retention.directory} has {free} bytes free, under the "
            f"request log's floor of {floor} (--request_log_min_free_bytes)"
        )
        return False

    def _pause(self, why: str) -> None:
        """Warns once that records are being dropped, and why."""
        if self._paused != why:
            log.warning(
                "Request log %s: records are dropped (counted as dropped) until there is "
                "room: %s.", self.config.filename_prefix, why,
            )
            self._paused = why

    def _resume(self) -> None:
        if self._paused is not None:
            log.warning("Request log %s: writing again.", self.config.filename_prefix)
            self._paused = None

    def _write_outcomes(self) -> None:
        lines = []
        while self._outcomes and len(lines) < WRITE_BATCH:
            lines.append(self._outcomes.popleft())
        if lines and self._disk_has_room(sum(map(len, lines))):
            try:
                for line in lines:  # line by line: files rotate between lines, at their size
                    self._outcome_file.write(line)
                self._outcome_file.flush()
            except LogFull as exc:
                self._pause(str(exc))
            except OSError as exc:
                log.error("Cannot write request outcomes %s: %s", self._outcome_file.path, exc)
                self._outcome_file.close()
        self._outcome_file.rotate_if_old()

    def _write(self, batch: list[_Pending]) -> None:
        if not self._disk_has_room(sum(p.nbytes for p in batch)):
            for pending in batch:
                self._count(pending.model_name, "dropped")
            return
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
                self._resume()
            except LogFull as exc:
                self._pause(str(exc))
                self._count(model_name, "dropped")
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
    """A logger's current file of one kind: opened on the first write (private, after the
    budget made room for it), rotated by size and age, fsynced when closed."""

    # Names carry the second, pid and sequence; a clash (another logger of this prefix in this
    # process, or a leftover file) moves on to the next sequence number.
    _OPEN_ATTEMPTS = 100

    def __init__(
        self,
        config: RequestLogConfig,
        suffix: str,
        make_room: Callable[[int], bool] = lambda reserve: True,
    ) -> None:
        self._config = config
        self._suffix = suffix
        self._make_room = make_room
        self._file = None
        self.path: str | None = None
        self._opened = 0.0
        self._bytes = 0
        self._sequence = 0
        self.paths: list[str] = []

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def write(self, data: bytes) -> None:
        """Appends `data`; LogFull if a new file was needed and the budget has no room."""
        # Age is checked here as well as on the writer's idle poll: a record that arrives
        # after the limit, before the poll notices, belongs in a new file, not the old one.
        self.rotate_if_old()
        if self._file is not None and (
            self._bytes + len(data) > self._config.file_bytes and self._bytes > 0
        ):
            self.close()
        if self._file is None:
            self._open(len(data))
        self._file.write(data)
        self._bytes += len(data)

    def _open(self, first_write: int) -> None:
        prefix = self._config.filename_prefix
        # A record larger than a file gets a file of its own, as large as it is.
        reserve = max(self._config.file_bytes, first_write)
        if not self._make_room(reserve):
            raise LogFull(
                f"its budget (--request_log_max_bytes {self._config.budget.max_bytes}, "
                f"--request_log_max_files {self._config.budget.max_files}) cannot hold a new "
                f"{reserve}-byte file beside the files still being written"
            )
        directory = os.path.dirname(prefix)
        if directory:
            make_private_dirs(directory)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for _ in range(self._OPEN_ATTEMPTS):
            self._sequence += 1
            path = f"{prefix}-{stamp}-{os.getpid()}-{self._sequence:05d}{self._suffix}"
            try:
                self._file = create_private_file(path)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"{prefix}-{stamp}-{os.getpid()}-*{self._suffix}: all taken")
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
        free_space: FreeSpaceProbe = disk_free_bytes,
    ) -> None:
        self.settings = settings
        self._count = count or (lambda model, outcome: None)
        self._rng = rng
        self._free_space = free_space
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
                    logger = self._by_config[config] = RequestLogger(
                        config, self._count, self._free_space
                    )
            self._by_model[model_name] = logger
            return logger

    def log(
        self,
        model_name: str,
        version: int,
        signature_name: str,
        kind: str,
        build: Builder,
        holds: object = None,
    ) -> None:
        """Samples the request and, if chosen, queues its record; never waits on the writer,
        never raises. `holds` is what `build` keeps alive until written (the request's arrays,
        the answer): its size counts against the queue's byte bound."""
        logger = self.logger_for(model_name)
        if logger is None or self._rng() >= logger.config.sampling_rate:
            return
        nbytes = MIN_RECORD_BYTES + held_bytes(holds)
        logger.submit(
            _Pending(model_name, version, signature_name, kind, int(time.time()), build, nbytes)
        )

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
