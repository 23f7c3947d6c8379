"""A CSV row straight to the bytes of a serialized tf.train.Example (pure Python, no TF).

Building tf.train.Example messages cell by cell and serializing them cost ~100 us per row
(taxi: 18 columns), most of CsvExampleGen's time at scale. A row here becomes its bytes in one
pass, with the wire format written by hand: exactly the bytes
`Example.SerializeToString(deterministic=True)` gives (features sorted by name, packed
repeated values), so ExampleGen's hash split puts every row where it always did, and
downstream readers see the same records. A test holds the two equal on generated rows.

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }      entry { key = 1; value = 2; }
    Feature  { oneof { BytesList = 1; FloatList = 2; Int64List = 3; } }
    *List    { repeated value = 1 [packed]; }
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

from beamline.data.cell_types import INT64_MAX, INT64_MIN

INT, FLOAT, BYTES = "int", "float", "bytes"
_FLOAT32 = struct.Struct("<f")


# Categorical and small-integer columns repeat a few values: their encoded features are kept,
# up to this many distinct cells per column.
_CACHE_PER_COLUMN = 4096
_SMALL = [bytes((i,)) for i in range(128)]


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int_feature(cell: str) -> bytes:
    value = int(cell)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{cell!r} does not fit in an int64")
    varint = _varint(value & 0xFFFFFFFFFFFFFFFF)  # negative: 10-byte two's complement
    return b"\x1a" + _varint(len(varint) + 2) + b"\x0a" + _varint(len(varint)) + varint


def _float_feature(cell: str) -> bytes:
    value = float(cell)
    try:
        packed = _FLOAT32.pack(value)  # rounds to nearest, as protobuf's double -> float does
    except OverflowError:  # rounds past the largest float32: protobuf stores +-inf
        packed = _FLOAT32.pack(math.copysign(math.inf, value))
    return b"\x12\x06\x0a\x04" + packed


def _bytes_feature(cell: str) -> bytes:
    raw = cell.encode("utf-8")
    inner = b"\x0a" + _varint(len(raw)) + raw
    return b"\x0a" + _varint(len(inner)) + inner


_FEATURE = {INT: _int_feature, FLOAT: _float_feature, BYTES: _bytes_feature}


def row_encoder(columns: Sequence[tuple[str, str]]) -> Callable[[Sequence[str]], bytes]:
    """For (name, INT|FLOAT|BYTES) columns, a function from a row's cells ("" = missing, left
    out) to the serialized tf.train.Example. Each `*_feature` gives a Feature's payload."""
    # Deterministic serialization writes map entries sorted by key (as UTF-8 bytes).
    order = sorted(range(len(columns)), key=lambda i: columns[i][0].encode("utf-8"))
    plan = []
    for index in order:
        name, kind = columns[index]
        key = name.encode("utf-8")
        plan.append((index, b"\x0a" + _varint(len(key)) + key + b"\x12", _FEATURE[kind], {}))

    def encode(cells: Sequence[str]) -> bytes:
        entries = []
        for index, key, feature, cache in plan:
            cell = cells[index]
            if not cell:
                continue
            entry = cache.get(cell)
            if entry is None:
                value = feature(cell)
                entry = key + _varint(len(value)) + value
                entry = b"\x0a" + _varint(len(entry)) + entry
                if len(cache) < _CACHE_PER_COLUMN:
                    cache[cell] = entry
            entries.append(entry)
        features = b"".join(entries)
        return b"\x0a" + _varint(len(features)) + features

    return encode
