"""Protocol-buffer wire encoding by hand, for the few messages the request logger writes often.

Building a PredictRequest/PredictionLog through the protobuf API costs ~0.3 ms a record (map
fields of TensorProto are slow to fill, copy and serialize); the same bytes written directly
cost a few microseconds. Only what the logger needs: varints, length-delimited fields, and
`PredictionLog` = LogMetadata (1) + one of classify (2) / regress (3) / predict (6) /
multi_inference (4) log {request (1), response (2)}. Any protobuf parser reads the result.
"""

from __future__ import annotations

LOG_FIELD_NUMBERS = {"predict": 6, "classify": 2, "regress": 3, "multi_inference": 4}


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _ONE_BYTE[value]  # tags and most lengths: the common case, kept cheap
    out = bytearray()
    value &= (1 << 64) - 1  # negative int64 values are ten-byte two's complement
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


# Tags of length-delimited fields 1..15 (one byte each): the fields these messages use.
_DELIMITED_TAGS = [bytes((n << 3 | 2,)) for n in range(16)]


def field_bytes(number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2): a string, bytes or embedded message."""
    size = len(data)
    return b"".join(
        (
            _DELIMITED_TAGS[number] if number < 16 else varint(number << 3 | 2),
            _ONE_BYTE[size] if size < 128 else varint(size),
            data,
        )
    )


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def prediction_log(metadata: bytes, kind: str, request: bytes, response: bytes) -> bytes:
    """A serialized PredictionLog from serialized parts."""
    entry = field_bytes(1, request) + field_bytes(2, response)
    return field_bytes(1, metadata) + field_bytes(LOG_FIELD_NUMBERS[kind], entry)
