"""Reading request logs back: every intact PredictionLog under a directory, damage counted.

A torn tail (the writer was killed mid-record) or a corrupt record ends that file's reading;
the records before it are kept and the file is listed in `LogScan.damaged`, never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from beamline_serving.request_log.config import FILE_SUFFIX
from beamline_serving.request_log.tfrecord import ReadOutcome, read_records


@dataclass
class LogScan:
    """What a scan of a log directory found."""

    files: list[str] = field(default_factory=list)
    records: int = 0
    damaged: dict[str, str] = field(default_factory=dict)  # path -> "torn tail" | "corrupt ..."


def log_files(directory: str | os.PathLike) -> list[str]:
    """The request log files under `directory` (recursively), in name order."""
    found = []
    for parent, _, names in os.walk(directory):
        found += [os.path.join(parent, n) for n in names if n.endswith(FILE_SUFFIX)]
    return sorted(found)


def read_prediction_logs(
    directory: str | os.PathLike, scan: LogScan | None = None, message_type: type | None = None
) -> Iterator:
    """Yields each intact `PredictionLog` under `directory`; damage is noted in `scan`.

    `message_type` is the PredictionLog class to parse into; the default, tensorflow_serving's,
    imports TensorFlow (a reader that must stay light passes a class of its own pool)."""
    from google.protobuf.message import DecodeError

    if message_type is None:
        from tensorflow_serving.apis import prediction_log_pb2

        message_type = prediction_log_pb2.PredictionLog
    scan = scan if scan is not None else LogScan()
    for path in log_files(directory):
        scan.files.append(path)
        outcome = ReadOutcome()
        try:
            with open(path, "rb") as stream:
                for data in read_records(stream, outcome):
                    record = message_type()
                    try:
                        record.ParseFromString(data)
                    except DecodeError:
                        scan.damaged[path] = f"corrupt record at byte {outcome.offset}"
                        break
                    scan.records += 1
                    yield record
        except OSError as exc:
            scan.damaged[path] = f"unreadable: {exc.strerror}"
            continue
        if path not in scan.damaged:
            if outcome.corrupt:
                scan.damaged[path] = f"corrupt record at byte {outcome.offset}"
            elif outcome.torn_tail:
                scan.damaged[path] = f"torn tail after byte {outcome.offset}"
