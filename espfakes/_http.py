"""Serve HTTP/1.1 with a minimal hand-written parser on top of ``asyncio.Protocol``.

The stdlib ``http.server`` costs a thread and several buffered-file layers per connection,
which tops out far below what a send benchmark pushes. This parser only knows what the fakes
need: request line, headers, ``Content-Length`` or chunked bodies, ``Expect: 100-continue``,
keep-alive and pipelining (responses go out in request order).
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl

# Bigger heads than this are not something a real client sends to an email API.
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
# A batch of 500 messages is megabytes: fewer, larger reads cost less per message.
RECV_BUFFER_BYTES = 256 * 1024

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(slots=True)
class Request:
    """Hold one parsed HTTP request; header names are lower-case bytes."""

    method: str
    path: str
    query: str
    version: str
    headers: dict[bytes, bytes]
    body: bytes
    keep_alive: bool

    def query_args(self) -> dict[str, str]:
        """Return the query string as a dict (last value wins)."""
        return dict(parse_qsl(self.query))


@dataclass(slots=True)
class Response:
    """Hold a response; ``close`` asks for the connection to be closed after it."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False

    def encode(self, keep_alive: bool) -> bytes:
        """Serialise the status line, headers and body."""
        reason = REASONS.get(self.status, "Unknown")
        lines = [
            f"HTTP/1.1 {self.status} {reason}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class HTTPApp(Protocol):
    """Describe what the protocol needs from the application serving requests."""

    def delay_for(self, request: Request) -> float:
        """Return how many seconds to wait before handling ``request``."""

    def handle(self, request: Request) -> Response | None:
        """Answer ``request``; ``None`` means close the connection without answering."""

    def connection_opened(self) -> None:
        """Count a new client connection."""


class _BadRequest(Exception):
    """Signal a request that cannot be parsed; carries the status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HTTPServerProtocol(asyncio.BufferedProtocol):
    """Parse pipelined HTTP/1.1 requests from one connection and answer them in order.

    A ``BufferedProtocol`` receives into one reusable buffer; a plain ``Protocol`` makes asyncio
    allocate a fresh 256 KiB bytes object for every recv(), which glibc serves with mmap and
    munmap, a cost that shows under a send benchmark's load (figures: docs/performance.md).
    """

    def __init__(self, app: HTTPApp) -> None:
        self._app = app
        self._recv_buffer = memoryview(bytearray(RECV_BUFFER_BYTES))
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        # Parsed head of the request whose body is still arriving.
        self._head: tuple[str, str, str, dict[bytes, bytes], int, bool] | None = None
        self._busy = False  # a request is waiting out its injected latency
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport and count the connection."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._app.connection_opened()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop writing; a request waiting out its latency is still handled (and recorded)."""
        self._closed = True
        self._buf.clear()

    def get_buffer(self, sizehint: int) -> memoryview:
        """Lend asyncio the reusable receive buffer."""
        return self._recv_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """Append what was received and answer every complete request."""
        self._buf += self._recv_buffer[:nbytes]
        self._pump()

    def _pump(self) -> None:
        while not self._busy and not self._closed:
            try:
                request = self._parse()
            except _BadRequest as exc:
                body = f'{{"ErrorCode":0,"Message":"{exc}"}}'.encode()
                self._send(Response(exc.status, body, close=True), keep_alive=False)
                return
            if request is None:
                return
            delay = self._app.delay_for(request)
            if delay > 0:
                # Later requests on this connection wait: responses must stay in order.
                self._busy = True
                self._loop.call_later(delay, self._finish_delayed, request)
                return
            self._respond(request)

    def _finish_delayed(self, request: Request) -> None:
        self._busy = False
        self._respond(request)
        self._pump()

    def _respond(self, request: Request) -> None:
        try:
            response = self._app.handle(request)
        except Exception:
            # A bug in the fake must show up loudly, not as a silently dead connection.
            traceback.print_exc()
            response = Response(500, b'{"ErrorCode":0,"Message":"fake server error"}', close=True)
        if response is None:
            self._drop()
            return
        self._send(response, keep_alive=request.keep_alive and not response.close)

    def _send(self, response: Response, keep_alive: bool) -> None:
        if self._closed or self._transport is None:
            return
        self._transport.write(response.encode(keep_alive))
        if not keep_alive:
            self._drop()

    def _drop(self) -> None:
        if not self._closed and self._transport is not None:
            # close() flushes anything already written, then sends FIN.
            self._transport.close()
        self._closed = True

    def _parse(self) -> Request | None:
        buf = self._buf
        if self._head is None:
            # RFC 9112 2.2: ignore empty lines before a request line.
            while buf[:2] == b"\r\n":
                del buf[:2]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise _BadRequest(431, "Request head too large")
                return None
            head = bytes(buf[:end])
            del buf[: end + 4]
            self._head = self._parse_head(head)
        method, target, version, headers, length, chunked = self._head
        if chunked:
            body = self._take_chunked()
            if body is None:
                return None
        else:
            if len(buf) < length:
                return None
            with memoryview(buf) as view:
                body = bytes(view[:length])  # one copy, where a slice of buf makes two
            del buf[:length]
        self._head = None
        path, _, query = target.partition("?")
        connection = headers.get(b"connection", b"").lower()
        if version == "HTTP/1.0":
            keep_alive = connection == b"keep-alive"
        else:
            keep_alive = connection != b"close"
        return Request(method, path, query, version, headers, body, keep_alive)

    def _parse_head(self, head: bytes) -> tuple[str, str, str, dict[bytes, bytes], int, bool]:
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise _BadRequest(400, "Malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise _BadRequest(400, "Unsupported HTTP version")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise _BadRequest(400, "Malformed header line")
            headers[name.strip().lower()] = value.strip()
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        length = 0
        if not chunked and b"content-length" in headers:
            try:
                length = int(headers[b"content-length"])
            except ValueError:
                raise _BadRequest(400, "Bad Content-Length") from None
            if length < 0:
                raise _BadRequest(400, "Bad Content-Length")
            if length > MAX_BODY_BYTES:
                raise _BadRequest(413, "Body too large")
        expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        if expects_continue and (chunked or len(self._buf) < length) and self._transport:
            # curl waits a second for this before sending bodies over 1 KiB.
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, target, version, headers, length, chunked

    def _take_chunked(self) -> bytes | None:
        buf = self._buf
        pos = 0
        parts: list[bytes] = []
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            try:
                size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            except ValueError:
                raise _BadRequest(400, "Bad chunk size") from None
            pos = eol + 2
            if size == 0:
                if buf[pos : pos + 2] == b"\r\n":
                    end = pos + 2
                else:
                    trailer_end = buf.find(b"\r\n\r\n", pos)
                    if trailer_end < 0:
                        return None
                    end = trailer_end + 4
                del buf[:end]
                return b"".join(parts)
            if len(buf) < pos + size + 2:
                return None
            parts.append(bytes(buf[pos : pos + size]))
            pos += size + 2
            if pos > MAX_BODY_BYTES:
                raise _BadRequest(413, "Body too large")


async def start_http_server(app: HTTPApp, port: int) -> asyncio.Server:
    """Listen on 127.0.0.1:``port`` (0 picks a free port) and serve ``app``."""
    loop = asyncio.get_running_loop()
    factory: Callable[[], asyncio.Protocol] = lambda: HTTPServerProtocol(app)  # noqa: E731
    # A deep backlog because benchmarks open many connections at once.
    return await loop.create_server(factory, "127.0.0.1", port, backlog=1024)
