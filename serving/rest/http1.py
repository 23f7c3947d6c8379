"""A small HTTP/1.1 server on asyncio's Protocol API, for the REST adapter.

Measured on this project's 2-core machines: an echo over Tornado's HTTP/1.1 layer answered in
~230 us at p50 and topped out near 2,000 requests/s; the same echo on a bare asyncio Protocol
took ~90 us and passed 8,000/s. Serving latency is the point of this server, so it speaks
HTTP/1.1 itself. What it supports: keep-alive and pipelining (answers in order),
Content-Length and chunked bodies, `Expect: 100-continue`, a body limit answered 413 after the
body is drained (so a client still sending reads the answer, not a reset), a header size limit
(431), malformed requests answered 400 and the connection closed, idle connections closed, a
client's half-close (requests already sent are still answered).

Slow and flooding clients are bounded (serving/core/config.py RestLimits): a request's headers
must arrive within a deadline counted from its first byte, and its body within a deadline that
grows with the bytes received (a trickle of bytes never extends either, as an idle timer re-armed
on every read would); both answer 408 and close. Connections beyond a cap, and the connection
whose bytes push the total held across connections over a cap, are answered 503 and closed.
Chunk trailers have a total cap (431), and a body declared larger than twice the body limit is
answered 413 at once rather than drained.

Framing is strict, as RFC 9112 asks of a server that must not be fooled into reading a smuggled
request: only HTTP/1.0 and HTTP/1.1; a method and header names are ASCII tokens; Content-Length
is ASCII digits; a request with both Transfer-Encoding and Content-Length, or with a transfer
coding other than `chunked`, is refused (400) and its connection closed (§6.1); a chunk size is
1-16 hex digits and nothing else. Whatever goes wrong while reading a request, the client gets
an answer: any exception in parsing is a 400 and a closed connection, never a silent drop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable

from beamline_serving.core.config import RestLimits

log = logging.getLogger("beamline.serving")

MAX_HEADER_BYTES = 64 * 1024
MAX_CONTENT_LENGTH_DIGITS = 18  # more cannot be drained: answered 413 and closed at once
# RFC 9110 token (method, field names), request-line (§3 of RFC 9112), chunk-size (§7.1).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) HTTP/([0-9])\.([0-9])")
_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_FIELD_VALUE_FORBIDDEN = re.compile(r"[\x00\r\n]")
REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Request:
    __slots__ = ("method", "target", "headers", "body", "too_large")

    def __init__(self, method: str, target: str, headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = b""
        self.too_large = False


class Reply:
    """An answer; `headers` are extra header lines, already formatted (b"Name: value\r\n")."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: bytes = b"",
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


Handler = Callable[[Request], Awaitable[Reply]]


class _BadRequest(Exception):
    """A request refused while it is read: answered `status` (or `reply`), then closed."""

    def __init__(self, status: int, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reply = reply


class HttpServer:
    """Serves `handler(request) -> Reply` on a TCP port of the running asyncio loop."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int,
        too_large: Callable[[int], Reply],
        extra_headers: dict[str, str] | None = None,
        limits: RestLimits | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.too_large = too_large
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (extra_headers or {}).items()).encode()
        self.limits = limits = limits or RestLimits()
        # One largest request must always fit, or it could never be served.
        self.max_buffered_bytes = max(limits.max_buffered_bytes, max_body_bytes + MAX_HEADER_BYTES)
        self.buffered_bytes = 0  # request bytes held by every connection (read, not answered)
        self._on_close = on_close
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()

    async def listen(self, host: str, port: int, reuse_port: bool = False) -> None:
        """`reuse_port`: share the port with the other processes of this server (only then:
        otherwise a second server on the same port would silently take half the traffic)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, reuse_port=reuse_port,
            backlog=1024,
        )

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close_when_idle()
        if self._on_close is not None:
            self._on_close()

    def serialize(self, reply: Reply, keep_alive: bool) -> bytes:
        head = (
            f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Unknown')}\r\n"
            f"Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.body)}\r\n"
        ).encode()
        if not keep_alive:
            head += b"Connection: close\r\n"
        return head + self.extra + reply.headers + b"\r\n" + reply.body


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.request: Request | None = None
        self.body: list[bytes | bytearray] = []
        self.body_bytes = 0  # bytes in `self.body`
        self.answering = 0  # bytes of the body of the request being answered
        self.held = 0  # this connection's share of `server.buffered_bytes`
        self.received = 0
        self.remaining = 0  # bytes of the Content-Length body still to read
        self.chunked = False
        self.chunk_left = -1  # -1: expecting a chunk-size line
        self.trailer_bytes = 0
        self.keep_alive = True
        self.busy = False
        self.closing = False
        self.paused = False
        self.eof = False  # the client half-closed: answer what it sent, then close
        # The one timer of the connection: which wait it guards ("idle", "header", "body"; ""
        # while a request is being answered), and when that wait began.
        self.phase = ""
        self.phase_started = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        server = self.server
        if len(server._connections) >= server.limits.max_connections:
            # Refused before reading anything: the client reads the answer, then the close.
            self.busy = True  # never parse or time this connection
            self._fail(503, "The server has too many connections open; retry later.")
            return
        server._connections.add(self)
        self._watch()

    def connection_lost(self, exc) -> None:
        self.server._connections.discard(self)
        self.closing = True
        self._cancel_timer()
        self.server.buffered_bytes -= self.held
        self.held = 0
        self.buffer = bytearray()
        self.body = []

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        self._account()
        if self.server.buffered_bytes > self.server.max_buffered_bytes:
            self._fail(503, "The server holds too many request bytes; retry later.")
            return
        if self.busy:
            # Pipelined bytes wait for the answer in progress; stop reading if they pile up.
            if len(self.buffer) > self.server.max_body_bytes + MAX_HEADER_BYTES:
                self.transport.pause_reading()
                self.paused = True
            return
        self._parse_guarded()

    def eof_received(self) -> bool:
        self.eof = True
        if self.busy:
            return True  # keep the transport open to write the answer in progress
        return False  # nothing in progress: a partial request cannot complete; close

    def _parse_guarded(self) -> None:
        """Parses what is buffered; every failure becomes an answer (the one guard of this
        protocol: an exception escaping asyncio's callbacks would drop the connection)."""
        try:
            self._parse()
        except _BadRequest as exc:
            self._close_with(exc.reply or _error_reply(exc.status, str(exc)))
        except Exception:
            log.exception("Unexpected failure while reading an HTTP request")
            self._fail(400, "Malformed HTTP request")
        else:
            if self.eof and not self.busy and not self.closing:
                self.closing = True
                self.transport.close()
        if not self.closing:
            self._account()
            self._watch()

    # -- deadlines and the bytes held ---------------------------------------------------------

    def _account(self) -> None:
        """Brings this connection's share of the server's held request bytes up to date."""
        held = len(self.buffer) + self.body_bytes + self.answering
        self.server.buffered_bytes += held - self.held
        self.held = held

    def _watch(self) -> None:
        """Arms the timer for what the connection waits for now. A timer is armed when a wait
        begins, never pushed back by bytes arriving, so a trickling client meets its deadline."""
        if self.busy:
            phase = ""
        elif self.request is not None:
            phase = "body"
        else:
            phase = "header" if self.buffer else "idle"
        if phase == self.phase:
            return
        self._cancel_timer()
        self.phase = phase
        if not phase:
            return
        limits = self.server.limits
        loop = asyncio.get_running_loop()
        self.phase_started = loop.time()
        delay = {
            "idle": limits.idle_timeout,
            "header": limits.header_timeout,
            "body": limits.body_timeout,
        }[phase]
        self.timer = loop.call_later(delay, self._deadline)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _deadline(self) -> None:
        self.timer = None
        if self.busy or self.closing or self.transport is None:
            return
        if self.phase == "idle":
            self.closing = True
            self.transport.close()
        elif self.phase == "header":
            self._fail(408, "The request's headers did not arrive in time.")
        else:
            self._body_deadline()

    def _body_deadline(self) -> None:
        """The body's time is its base allowance plus a second per minimum-rate's worth of bytes
        received: checked when the timer fires, re-armed for the rest if the client has earned
        more (so reading bytes costs no timer work)."""
        limits = self.server.limits
        rate = limits.min_body_bytes_per_second
        allowed = limits.body_timeout + (self.received / rate if rate > 0 else 0.0)
        loop = asyncio.get_running_loop()
        left = self.phase_started + allowed - loop.time()
        if left > 0:
            self.timer = loop.call_later(left, self._deadline)
            return
        self._fail(408, "The request's body did not arrive in time.")

    # -- parsing ----------------------------------------------------------------------------

    def _parse(self) -> None:
        while not self.busy and not self.closing:
            if self.request is None:
                if not self._parse_head():
                    return
            elif self.chunked:
                if not self._parse_chunks():
                    return
            else:
                take = min(self.remaining, len(self.buffer))
                if take and take == len(self.buffer):
                    # All of it is body: handed over whole, not copied (bodies run to MiBs).
                    self._add_body(self.buffer)
                    self.buffer = bytearray()
                    self.remaining -= take
                elif take:
                    self._add_body(bytes(self.buffer[:take]))
                    del self.buffer[:take]
                    self.remaining -= take
                if self.remaining:
                    return
                self._dispatch()

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise _BadRequest(431, "Request header fields too large")
            return False
        if end > MAX_HEADER_BYTES:
            raise _BadRequest(431, "Request header fields too large")
        try:
            head = bytes(self.buffer[:end]).decode("latin-1")
        finally:
            del self.buffer[: end + 4]
        lines = head.split("\r\n")
        match = _REQUEST_LINE.fullmatch(lines[0])
        if match is None:
            raise _BadRequest(400, "Malformed HTTP request line")
        method, target = match.group(1), match.group(2)
        if match.group(3, 4) not in (("1", "0"), ("1", "1")):
            raise _BadRequest(400, "Unsupported HTTP version: only HTTP/1.0 and HTTP/1.1")
        version = f"HTTP/1.{match.group(4)}"
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN.fullmatch(name) or _FIELD_VALUE_FORBIDDEN.search(value):
                raise _BadRequest(400, "Malformed HTTP header")
            key = name.lower()
            value = value.strip(" \t")
            if key in headers and key in ("content-length", "transfer-encoding"):
                if key == "transfer-encoding" or headers[key] != value:
                    raise _BadRequest(400, f"Repeated {name} header")
            headers[key] = value
        if "transfer-encoding" in headers and "content-length" in headers:
            # RFC 9112 §6.1: a request smuggling attempt or a broken proxy; never guess which.
            raise _BadRequest(400, "Both Transfer-Encoding and Content-Length in one request")
        if "transfer-encoding" in headers and version == "HTTP/1.0":
            # RFC 9112 §6.1: HTTP/1.0 has no transfer codings, so the framing is faulty.
            raise _BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        self.request = request = Request(method, target, headers)
        self.body = []
        self.body_bytes = 0
        self.received = 0
        if "transfer-encoding" in headers:
            encoding = headers["transfer-encoding"]
            if encoding.lower() != "chunked":
                raise _BadRequest(400, "Unsupported Transfer-Encoding: only chunked is accepted")
            self.chunked, self.chunk_left, self.remaining = True, -1, 0
            self.trailer_bytes = 0
        else:
            length = headers.get("content-length", "0")
            if not _DIGITS.fullmatch(length):  # ASCII only: str.isdigit() accepts "²"
                raise _BadRequest(400, "Malformed Content-Length")
            if len(length) > MAX_CONTENT_LENGTH_DIGITS or int(length) > self._drain_limit():
                # More than is worth draining: answered at once and closed.
                request.too_large = True
                self.keep_alive = False
                self._dispatch()
                return False
            self.chunked, self.remaining = False, int(length)
            if self.remaining > self.server.max_body_bytes:
                request.too_large = True
        if headers.get("expect", "").lower() == "100-continue":
            if request.too_large:
                # Refuse before the client sends the body; it cannot be drained, so close.
                self.keep_alive = False
                self._dispatch()
                return False
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _drain_limit(self) -> int:
        """The most body bytes read (and dropped) before a 413, so that a client still sending
        reads the answer rather than a reset; beyond it the answer comes at once."""
        return 2 * self.server.max_body_bytes

    def _parse_chunks(self) -> bool:
        while True:
            if self.chunk_left == -1:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    if len(self.buffer) > 1024:
                        raise _BadRequest(400, "Malformed chunk size")
                    return False
                size_text, semicolon, _ = bytes(self.buffer[:end]).partition(b";")
                del self.buffer[: end + 2]
                if semicolon:  # chunk extensions follow (ignored); BWS may precede them
                    size_text = size_text.rstrip(b" \t")
                if not _CHUNK_SIZE.fullmatch(size_text):  # not 0x.., +.., 1_0, or spaces
                    raise _BadRequest(400, "Malformed chunk size")
                self.chunk_left = int(size_text, 16)
                if self.chunk_left == 0:
                    self.chunk_left = -2  # trailers follow
            if self.chunk_left == -2:
                return self._parse_trailer()
            if len(self.buffer) < self.chunk_left + 2:
                # Take what is there (minus a possible partial CRLF) to bound memory.
                take = max(min(self.chunk_left, len(self.buffer) - 1), 0)
                if take:
                    self._add_body(bytes(self.buffer[:take]))
                    del self.buffer[:take]
                    self.chunk_left -= take
                return False
            self._add_body(bytes(self.buffer[: self.chunk_left]))
            if self.buffer[self.chunk_left : self.chunk_left + 2] != b"\r\n":
                raise _BadRequest(400, "Malformed chunk")
            del self.buffer[: self.chunk_left + 2]
            self.chunk_left = -1

    def _parse_trailer(self) -> bool:
        """Reads (and ignores) trailer fields up to the empty line; True when it is read."""
        limit = self.server.limits.max_trailer_bytes
        while True:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if self.trailer_bytes + len(self.buffer) > limit:
                    raise _BadRequest(431, "Chunk trailers too large")
                return False
            self.trailer_bytes += end + 2
            if self.trailer_bytes > limit:
                raise _BadRequest(431, "Chunk trailers too large")
            empty = end == 0
            del self.buffer[: end + 2]
            if empty:
                self.chunked = False
                self.remaining = 0
                return True

    def _add_body(self, data: bytes | bytearray) -> None:
        request = self.request
        self.received += len(data)
        if self.received > self._drain_limit():
            too_large = self.server.too_large(self.server.max_body_bytes)
            raise _BadRequest(too_large.status, "Request body too large", too_large)
        if request.too_large:
            return  # drained and dropped
        if self.received > self.server.max_body_bytes:
            request.too_large = True
            self.body = []
            self.body_bytes = 0
            return
        self.body.append(data)
        self.body_bytes += len(data)

    # -- answering --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        request, self.request = self.request, None
        request.body = b"".join(self.body)
        self.body = []
        self.body_bytes = 0
        self.answering = len(request.body)
        self.busy = True
        if request.too_large:
            self._send(self.server.too_large(self.server.max_body_bytes))
            return
        task = asyncio.ensure_future(self.server.handler(request))
        task.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Future) -> None:
        try:
            reply = task.result()
        except Exception:  # the handler answers every error itself; this is a last resort
            log.exception("REST handler failed")
            reply = Reply(500, b'{"error": "Internal error"}')
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if self.closing or self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.server.serialize(reply, self.keep_alive))
        self.busy = False
        self.answering = 0
        if not self.keep_alive:
            self.closing = True
            self.transport.close()
            return
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        self._parse_guarded()

    def _fail(self, status: int, message: str) -> None:
        self._close_with(_error_reply(status, message))

    def _close_with(self, reply: Reply) -> None:
        """Answers `reply` and closes the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.server.serialize(reply, keep_alive=False))
        self.closing = True
        self._cancel_timer()
        self.transport.close()

    def close_when_idle(self) -> None:
        self.keep_alive = False
        if not self.busy and self.transport is not None:
            self.transport.close()


def _error_reply(status: int, message: str) -> Reply:
    return Reply(status, json.dumps({"error": message}).encode())  # ASCII: always encodes
