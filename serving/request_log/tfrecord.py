"""TFRecord framing, written and read without TensorFlow, tolerant of a torn tail.

A record is `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`
(little-endian), exactly what tf.io.TFRecordWriter writes, so TensorFlow, TFDV and Beam read
these files too. Reading here differs in one way on purpose: a file whose writer died mid-record
ends in a torn record; `read_records` stops there and reports it instead of raising, so a crash
costs at most the record being written.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import google_crc32c

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER_BYTES = _LENGTH.size + _CRC.size
_MASK_DELTA = 0xA282EAD8
# A record longer than this is taken as corruption, not allocated (log records are small).
MAX_RECORD_BYTES = 256 * 1024 * 1024


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One framed record."""
    length = _LENGTH.pack(len(data))
    return b"".join((length, _CRC.pack(masked_crc(length)), data, _CRC.pack(masked_crc(data))))


@dataclass
class ReadOutcome:
    """What a read found besides the records: a torn tail or corruption, and where."""

    records: int = 0
    torn_tail: bool = False  # the file ends inside a record (the writer was stopped)
    corrupt: bool = False  # a checksum or length is wrong: the rest of the file is unusable
    offset: int = 0  # where reading stopped


def read_records(stream: BinaryIO, outcome: ReadOutcome | None = None) -> Iterator[bytes]:
    """Yields each intact record; stops at a torn tail or the first corrupt record, noting which
    in `outcome`."""
    outcome = outcome if outcome is not None else ReadOutcome()
    while True:
        header = stream.read(_HEADER_BYTES)
        if not header:
            return
        if len(header) < _HEADER_BYTES:
            outcome.torn_tail = True
            return
        length_bytes = header[: _LENGTH.size]
        (length,) = _LENGTH.unpack(length_bytes)
        (length_crc,) = _CRC.unpack(header[_LENGTH.size :])
        if length_crc != masked_crc(length_bytes) or length > MAX_RECORD_BYTES:
            outcome.corrupt = True
            return
        body = stream.read(length + _CRC.size)
        if len(body) < length + _CRC.size:
            outcome.torn_tail = True
            return
        data = body[:length]
        (data_crc,) = _CRC.unpack(body[length:])
        if data_crc != masked_crc(data):
            outcome.corrupt = True
            return
        outcome.records += 1
        outcome.offset = stream.tell()
        yield data
