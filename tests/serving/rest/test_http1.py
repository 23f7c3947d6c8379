"""Unit tests of the HTTP/1.1 server (serving/rest/http1.py) over raw loopback sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest

from beamline_serving.rest.http1 import HttpServer, Reply, Request

LIMIT = 1024


async def echo(request: Request) -> Reply:
    if request.target == "/boom":
        raise RuntimeError("handler bug")
    doc = {"method": request.method, "target": request.target, "body": request.body.decode()}
    return Reply(200, json.dumps(doc).encode())


@pytest.fixture(scope="module")
def port():
    loop = asyncio.new_event_loop()
    server = HttpServer(
        echo, max_body_bytes=LIMIT, too_large=lambda limit: Reply(413, b'{"error": "big"}')
    )
    ready = threading.Event()
    holder = {}

    async def start():
        await server.listen("127.0.0.1", 0)
        holder["port"] = server._server.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    thread.daemon = True
    thread.start()
    assert ready.wait(10)
    yield holder["port"]
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data`, half-closes, and reads until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
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
