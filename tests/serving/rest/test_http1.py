"""Unit tests of the HTTP/1.1 server (serving/rest/http1.py) over raw loopback sockets."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time

import pytest

from beamline_serving.core.config import RestLimits
from beamline_serving.rest.http1 import MAX_HEADER_BYTES, HttpServer, Reply, Request
from tests.serving.rest.http_support import listening

LIMIT = 1024
# A guard against a hung test, far above any answer's real latency; never a speed limit.
HANG = 60


async def echo(request: Request) -> Reply:
    if request.target == "/boom":
        raise RuntimeError("handler bug")
    doc = {"method": request.method, "target": request.target, "body": request.body.decode()}
    return Reply(200, json.dumps(doc).encode())


@contextlib.contextmanager
def serving(limits: RestLimits | None = None, max_body_bytes: int = LIMIT):
    """(server, port) of an echo HttpServer on its own event loop thread."""
    server = HttpServer(
        echo,
        max_body_bytes=max_body_bytes,
        too_large=lambda limit: Reply(413, b'{"error": "big"}'),
        limits=limits,
    )
    with listening(server) as port:
        yield server, port


@pytest.fixture(scope="module")
def port():
    with serving() as (_, port):
        yield port


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data`, half-closes, and reads until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes or goes quiet (a reset after its answer counts as
    a close)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def responses(raw: bytes) -> list[tuple[int, dict, bytes]]:
    """(status, headers, body) of each response in `raw`."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        raw = rest[length:]
    return out


def test_keep_alive_and_pipelining_answer_in_order(port):
    raw = exchange(
        port,
        b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /b HTTP/1.1\r\n\r\n"
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nhi\r\n1 ;ext=1\r\n!\r\n0\r\n\r\n",
    )
    got = responses(raw)
    assert [json.loads(b)["target"] for _, _, b in got] == ["/a", "/b", "/c"]
    assert [json.loads(b)["body"] for _, _, b in got] == ["abc", "", "hi!"]


def test_http10_closes_unless_keep_alive(port):
    got = responses(exchange(port, b"GET /x HTTP/1.0\r\n\r\n"))
    assert got[0][0] == 200 and got[0][1]["connection"] == "close"


def test_body_over_the_limit_is_413_after_draining(port):
    body = b"x" * (LIMIT + 10)
    raw = exchange(
        port,
        b"POST /a HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        + b"GET /after HTTP/1.1\r\n\r\n",
    )
    got = responses(raw)
    assert [s for s, _, _ in got] == [413, 200]


def test_header_too_large_is_431(port):
    raw = exchange(port, b"GET / HTTP/1.1\r\nX: " + b"a" * (70 * 1024) + b"\r\n\r\n")
    assert responses(raw)[0][0] == 431


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / FTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n bad: header\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        # RFC 9112 framing: the ways a request can be read two ways are refused.
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nhi\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nhi\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nhi\r\n0\r\n\r\n",
        # HTTP/1.0 has no transfer codings (RFC 9112 §6.1): faulty framing, even kept alive.
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        b"0\r\n\r\n",
        b"GET / HTTP/1.9\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1 \r\n\r\n",
        "G\u00c9T / HTTP/1.1\r\n\r\n".encode("latin-1"),
        "POST / HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1"),
        "POST / HTTP/1.1\r\nContent-Length: \u0663\r\n\r\n".encode(),
        b"GET / HTTP/1.1\r\nX\x00: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    ],
)
def test_malformed_requests_are_400_and_closed(port, request_bytes):
    got = responses(exchange(port, request_bytes + b"GET /smuggled HTTP/1.1\r\n\r\n"))
    assert len(got) == 1, got
    status, headers, body = got[0]
    assert status == 400 and headers["connection"] == "close"
    assert "error" in json.loads(body)


@pytest.mark.parametrize("digits", [19, 5000])  # 5000: beyond Python's int-string limit
def test_a_content_length_too_long_to_drain_is_413_at_once(port, digits):
    got = responses(
        exchange(port, b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * digits + b"\r\n\r\n")
    )
    assert [s for s, _, _ in got] == [413]
    assert got[0][1]["connection"] == "close"


def test_a_half_closed_client_still_gets_its_answers(port):
    raw = exchange(port, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n")
    assert [json.loads(b)["target"] for _, _, b in responses(raw)] == ["/1", "/2"]


def test_a_failing_handler_is_answered(port):
    got = responses(exchange(port, b"GET /boom HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n"))
    assert got[0][0] == 500 and "error" in json.loads(got[0][2])
    assert json.loads(got[1][2])["target"] == "/next"


def test_cors_lets_browsers_send_a_request_key_and_read_the_answering_version():
    from beamline_serving.rest.api import RestApi, create_http_server
    from beamline_serving.rest.http1 import Reply

    server = create_http_server(RestApi(None), max_request_bytes=1024, cors=True)
    reply = Reply(200, b"{}", headers=b"X-Beamline-Model-Version: 3\r\n")
    head = server.serialize(reply, keep_alive=True).decode()
    assert "Access-Control-Allow-Headers: Content-Type, X-Beamline-Request-Key\r\n" in head
    assert "Access-Control-Expose-Headers: X-Beamline-Model-Version\r\n" in head
    assert head.endswith("X-Beamline-Model-Version: 3\r\n\r\n{}")


# -- slow and flooding clients ----------------------------------------------------------------


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=HANG)


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One answer on a kept-alive connection."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection instead of answering"
        raw += chunk
    status, headers, body = responses(raw)[0]
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status, headers, body


def trickle(sock: socket.socket, data: bytes, gap: float) -> bytes | None:
    """Sends `data` one byte per `gap` seconds (each gap spent waiting for the server to
    answer); what the server sent before it closed, or None if it never did."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return b""
        readable, _, _ = select.select([sock], [], [], gap)
        if readable:
            return read_all(sock)
    return None


def wait_for(condition) -> None:
    """A bounded poll on a condition the server's loop thread makes true."""
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def test_a_trickling_client_is_cut_off_by_the_header_deadline_while_others_are_served():
    # Each byte arrives well within the idle timeout: only a deadline on the whole header ends it.
    with serving(RestLimits(header_timeout=0.5, idle_timeout=HANG)) as (_, port):
        with connect(port) as slow:
            slow.sendall(b"GET /slow HTTP/1.1\r\nX-Pad: ")
            other = responses(exchange(port, b"GET /other HTTP/1.1\r\n\r\n"))
            assert [s for s, _, _ in other] == [200]
            answer = trickle(slow, b"a" * 400, gap=0.05)
    assert answer is not None, "a client trickling its headers was never cut off"
    assert answer == b"" or responses(answer)[0][0] == 408


def test_a_trickling_body_is_cut_off_by_the_body_deadline():
    limits = RestLimits(body_timeout=0.5, min_body_bytes_per_second=1_000_000, idle_timeout=HANG)
    with serving(limits) as (_, port), connect(port) as slow:
        slow.sendall(b"POST /slow HTTP/1.1\r\nContent-Length: 1000\r\n\r\n")
        answer = trickle(slow, b"b" * 400, gap=0.05)
    assert answer is not None, "a client trickling its body was never cut off"
    assert answer == b"" or responses(answer)[0][0] == 408


def test_connections_beyond_the_cap_are_refused_while_open_ones_are_served():
    with serving(RestLimits(max_connections=2)) as (server, port):
        first, second = connect(port), connect(port)
        with first, second:
            for sock in (first, second):
                sock.sendall(b"GET /open HTTP/1.1\r\n\r\n")
                assert read_response(sock)[0] == 200
            with connect(port) as third:
                refused = responses(read_all(third))
            assert [s for s, _, _ in refused] == [503]
            assert refused[0][1]["connection"] == "close"
            for sock in (first, second):
                sock.sendall(b"GET /still HTTP/1.1\r\n\r\n")
                assert read_response(sock)[0] == 200
            first.close()
            wait_for(lambda: len(server._connections) < 2)  # the server has read the close
            got = responses(exchange(port, b"GET /freed HTTP/1.1\r\n\r\n"))
            assert [s for s, _, _ in got] == [200]


def test_request_bytes_held_across_connections_are_capped():
    # A cap below one largest request is raised to it: LIMIT + MAX_HEADER_BYTES here.
    with serving(RestLimits(max_buffered_bytes=1)) as (server, port):
        cap = server.max_buffered_bytes
        with connect(port) as holder:
            head = b"GET /held HTTP/1.1\r\nX-Pad: " + b"a" * (MAX_HEADER_BYTES - 100)
            holder.sendall(head)
            wait_for(lambda: server.buffered_bytes >= len(head))
            with connect(port) as other:
                other.sendall(b"GET /other HTTP/1.1\r\nX-Pad: " + b"b" * (cap - len(head)))
                refused = responses(read_all(other))
            assert [s for s, _, _ in refused] == [503]
            holder.sendall(b"\r\n\r\n")
            assert read_response(holder)[0] == 200
        wait_for(lambda: server.buffered_bytes == 0)  # released when answered and closed


def test_endless_chunk_trailers_are_refused(port):
    limit = RestLimits().max_trailer_bytes
    line = b"X-Trailer: " + b"t" * 100 + b"\r\n"
    with connect(port) as sock:
        sock.sendall(b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n")
        sent = 0
        while sent <= limit:  # trailer fields that never end; the client stops past the cap
            sock.sendall(line)
            sent += len(line)
        got = responses(read_all(sock))
    assert [s for s, _, _ in got] == [431]
    assert got[0][1]["connection"] == "close"


def test_a_body_declared_beyond_what_is_worth_draining_is_413_at_once(port):
    got = responses(exchange(port, b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (3 * LIMIT)))
    assert [s for s, _, _ in got] == [413]
    assert got[0][1]["connection"] == "close"
