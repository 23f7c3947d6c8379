"""A bounded fuzz of a real server over raw sockets: hostile input is never a server error.

Several thousand requests, generated from a fixed seed (so a failure names a reproducible case):
valid requests mutated at the byte level, JSON values swapped for hostile ones (huge integers,
deep nesting, lone surrogates, NaN, wrong types), other text encodings, and HTTP framing
mutations (Content-Length with Transfer-Encoding, sloppy chunk sizes, odd versions, non-ASCII
digits, header garbage). Every answer must be a status other than 5xx (503 allowed: a full
batch queue), every error body must be JSON with an "error" string, every complete request must
be answered, and afterwards the server must still answer correctly. A shorter gRPC run sends
mutated PredictRequest bytes and accepts no UNKNOWN or INTERNAL status.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import copy
import json
import random
import socket
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2

from beamline_serving.core.tensors import make_tensor_proto
from tests.serving.support import example_rows

SEED = 20261126
HTTP_CASES = 4000
GRPC_CASES = 600
WORKERS = 4
ROWS = example_rows()


@dataclass
class Case:
    index: int
    kind: str
    data: bytes
    complete: bool  # a well-framed request that must be answered


# -- generation ---------------------------------------------------------------------------------

BIG = "__BIG_INTEGER__"  # replaced by 4,400 digits in the encoded body (past the int-string limit)
HOSTILE_VALUES = [
    BIG,
    BIG,
    10**400,
    2**64,
    -(2**63) - 1,
    float("nan"),
    float("inf"),
    "\ud800",
    "a\udfffb",
    "\x00",
    None,
    True,
    {},
    {"b64": "!!"},
    {"b64": base64.b64encode(b"\xff\xfe\x80").decode()},
    [],
    [[[]]],
]


def nested(depth: int):
    value = 1.0
    for _ in range(depth):
        value = [value]
    return value


def hostile(rng: random.Random):
    choice = rng.random()
    if choice < 0.15:
        return nested(rng.choice([2, 31, 32, 33, 40, 200, 600]))
    if choice < 0.25:
        return "".join(
            chr(rng.choice([0xD800, 0xDC00, 0xFFFF, 0x10FFFF, 0x41, 0])) for _ in range(5)
        )
    # Copies: a shared list or dict would be mutated later, and could come to contain itself.
    if choice < 0.35:
        return [copy.deepcopy(rng.choice(HOSTILE_VALUES)) for _ in range(rng.randint(1, 4))]
    return copy.deepcopy(rng.choice(HOSTILE_VALUES))


def valid_document(rng: random.Random) -> tuple[str, dict]:
    verb = rng.choice(["predict", "predict", "predict", "classify", "regress"])
    rows = [dict(r) for r in rng.sample(ROWS, rng.randint(1, len(ROWS)))]
    if verb != "predict":
        return verb, {"examples": rows}
    if rng.random() < 0.3:
        return verb, {"inputs": {k: [r[k] for r in rows] for k in rows[0]}}
    return verb, {"instances": rows}


def mutate_document(rng: random.Random, doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(list(doc))
        value = doc[key]
        roll = rng.random()
        if roll < 0.5 and isinstance(value, list) and value and isinstance(value[0], dict):
            at = rng.randrange(len(value))
            row = value[at]
            if isinstance(row, dict):
                row[rng.choice([*row, "\ud800", "extra"])] = hostile(rng)
            else:
                value[at] = hostile(rng)
        elif roll < 0.65 and isinstance(value, dict) and value:
            value[rng.choice(list(value))] = hostile(rng)
        elif roll < 0.8:
            doc[key] = hostile(rng)
        else:
            doc[rng.choice(["signature_name", "context", "instances", "\udc00"])] = hostile(rng)
    return doc


def dumps(rng: random.Random, doc) -> bytes:
    text = json.dumps(doc, allow_nan=True, ensure_ascii=rng.random() < 0.5)
    text = text.replace(f'"{BIG}"', rng.choice(["", "-"]) + "9" * 4400)
    roll = rng.random()
    if roll < 0.7:
        return text.encode("utf-8", "surrogatepass")
    if roll < 0.8:
        return text.encode("utf-16", "surrogatepass")
    if roll < 0.9:
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    return text.encode("latin-1", "replace")


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        at = rng.randrange(len(data))
        roll = rng.random()
        if roll < 0.3:
            data[at] = rng.randrange(256)
        elif roll < 0.5:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif roll < 0.7:
            del data[at : at + rng.randint(1, 8)]
        elif roll < 0.85:
            data[at:at] = data[at : at + rng.randint(1, 16)]
        else:
            data[at:at] = rng.choice([b"[", b"{", b'"', b"\\u", b"1e999", b"9" * 400, b"\\ud800"])
    return bytes(data)


def path_for(rng: random.Random, verb: str) -> str:
    if rng.random() < 0.8:  # mostly routes that reach the decoders
        return f"/v1/models/{rng.choice(['penguin', 'penguin', 'guarded'])}:{verb}"
    model = rng.choice(["penguin", "guarded", "nope", "pen%ED%A0%80guin", "p%00"])
    where = rng.choice(
        [
            "",
            "/versions/1",
            "/labels/stable",
            "/versions/" + "9" * rng.choice([19, 20, 4400, 5000]),
            "/labels/%ff%fe",
            "/versions/-1",
        ]
    )
    return f"/v1/models/{model}{where}:{verb}"


def framed(method: str, path: str, body: bytes, headers: list[str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: fuzz", f"Content-Length: {len(body)}"]
    lines += headers or []
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


FRAMING = [
    lambda b: (
        b"POST {p} HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        + b"%x\r\n" % len(b)
        + b
        + b"\r\n0\r\n\r\n"
    ),
    lambda b: (
        b"POST {p} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x%x\r\n" % len(b)
        + b
        + b"\r\n0\r\n\r\n"
    ),
    lambda b: (
        b"POST {p} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+%x\r\n" % len(b)
        + b
        + b"\r\n0\r\n\r\n"
    ),
    lambda b: (
        b"POST {p} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(b)
        + b
        + b"\r\n0\r\n\r\n"
    ),
    lambda b: b"POST {p} HTTP/1.9\r\nContent-Length: %d\r\n\r\n" % len(b) + b,
    lambda b: b"POST {p} HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(b) + b,
    lambda b: "POST {p} HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1") + b,
    lambda b: "POST {p} HTTP/1.1\r\nContent-Length: \u0663\r\n\r\n".encode() + b,
    lambda b: b"POST {p} HTTP/1.1\r\nContent-Length: 9" + b"9" * 5000 + b"\r\n\r\n" + b,
    lambda b: b"POST {p} HTTP/1.1\r\nContent-Length: %d\r\nContent-Length: 1\r\n\r\n" % len(b) + b,
    lambda b: b"POST {p} HTTP/1.1\r\nContent-Length: %d\r\n X: folded\r\n\r\n" % len(b) + b,
    lambda b: b"POST {p} HTTP/1.1\r\nContent-Length: %d\r\nX\x00Y: 1\r\n\r\n" % len(b) + b,
    lambda b: b"P\xd3ST {p} HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(b) + b,
    lambda b: b"POST {p} HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    lambda b: (
        b"POST {p} HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(b)
        + b
        + b"GET /v1/models/penguin HTTP/1.1\r\n\r\n"
    ),
    lambda b: b"GET {p} HTTP/1.1\r\n" + b"X: y\r\n" * 50 + b"\r\n",
]


def generate(count: int) -> list[Case]:
    rng = random.Random(SEED)
    cases = []
    for index in range(count):
        verb, doc = valid_document(rng)
        roll = rng.random()
        if roll < 0.35:
            kind, body = "value", dumps(rng, mutate_document(rng, doc))
            data, complete = framed("POST", path_for(rng, verb), body), True
        elif roll < 0.6:
            kind, body = "bytes", mutate_bytes(rng, json.dumps(doc).encode())
            data, complete = framed("POST", path_for(rng, verb), body), True
        elif roll < 0.7:
            kind = "path"
            data = framed(
                rng.choice(["GET", "POST"]), path_for(rng, verb), json.dumps(doc).encode()
            )
            complete = True
        elif roll < 0.9:
            kind = "framing"
            template = rng.choice(FRAMING)(json.dumps(doc).encode())
            data = template.replace(b"{p}", path_for(rng, verb).encode())
            complete = b"Content-Length: 9999" not in data
        else:
            kind = "raw"
            data = mutate_bytes(rng, framed("POST", path_for(rng, verb), json.dumps(doc).encode()))
            complete = False  # the framing itself may now announce more bytes than follow
        cases.append(Case(index, kind, data, complete))
    return cases


# -- sending ------------------------------------------------------------------------------------


def read_responses(sock: socket.socket) -> tuple[list[tuple[int, bytes]], bytes]:
    raw = b""
    try:
        while chunk := sock.recv(65536):
            raw += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    answers = []
    rest = raw
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answers.append((status, rest[:length]))
        rest = rest[length:]
    return answers, raw


def send(port: int, case: Case) -> tuple[list[int], list[str]]:
    """The statuses answered to one case, and the problems with them (empty: fine)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(case.data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server refused early (413/431) and closed; read what it said
        answers, raw = read_responses(sock)
    problems = []
    if case.complete and not answers:
        problems.append(f"no answer (got {raw[:200]!r})")
    for status, body in answers:
        if status >= 500 and status != 503:
            problems.append(f"status {status}: {body[:300]!r}")
        if status >= 400:
            try:
                error = json.loads(body)["error"]
                assert isinstance(error, str)
            except Exception:  # noqa: BLE001 - any failure to read it is the finding
                problems.append(f"status {status} with a body that is not JSON: {body[:300]!r}")
    statuses = [status for status, _ in answers]
    return statuses, [f"case {case.index} ({case.kind}) {case.data[:160]!r}: {p}" for p in problems]


def correct_answer(http, server) -> dict:
    resp = http.post(f"{server.rest_url}/v1/models/penguin:predict", json={"instances": ROWS})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_rest_fuzz(http, main_server):
    before = correct_answer(http, main_server)
    cases = generate(HTTP_CASES)
    assert len({c.data for c in cases}) > HTTP_CASES * 0.8  # several thousand distinct requests
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda c: send(main_server.rest_port, c), cases))
    problems = [p for _, found in results for p in found]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:20])
    statuses = collections.Counter(s for found, _ in results for s in found)
    # The cases reach every layer: answered models, decoders' 400s, routing's 404s, framing.
    assert statuses[200] > 100 and statuses[400] > 1000 and statuses[404] > 10, statuses
    assert main_server.alive()
    assert correct_answer(http, main_server) == before


def test_grpc_fuzz(grpc_channel, prediction_stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "penguin"
    request.inputs["bill_length_mm"].CopyFrom(make_tensor_proto(np.array([39.1], np.float32)))
    request.inputs["flipper_length_mm"].CopyFrom(make_tensor_proto(np.array([181], np.int64)))
    request.inputs["island"].CopyFrom(make_tensor_proto(np.array([b"Dream"], object)))
    valid = request.SerializeToString()
    expected = prediction_stub.Predict(request, timeout=30).outputs["scores"].float_val
    call = grpc_channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    rng = random.Random(SEED)
    refused = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
    problems = []
    for index in range(GRPC_CASES):
        data = mutate_bytes(rng, valid)
        try:
            call(data, timeout=30)
        except grpc.RpcError as exc:
            if exc.code() in refused:
                problems.append(f"case {index} {data!r}: {exc.code()} {exc.details()}")
    assert not problems, "\n".join(problems[:20])
    assert prediction_stub.Predict(request, timeout=30).outputs["scores"].float_val == expected


if __name__ == "__main__":  # print a few generated cases, to look at
    for case in generate(20):
        print(case.kind, case.complete, case.data[:200])
    pytest.main([__file__])
