"""A local integrator's endpoint for Rally's webhooks, and a signature check of its own.

The check is written from the scheme's description (Stripe's: `t=<unix>,v1=<hex HMAC-SHA256
of "<t>.<raw body>">`), with hmac and hashlib alone: it imports nothing of webhooks/, so a
mistake in Rally's signing cannot be mirrored by the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How far a signature's time may be from the receiver's clock (Stripe's default tolerance).
TOLERANCE_SECONDS = 300


def signature_is_valid(*, secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Check a Rally-Signature header over the raw body, as an integrator's code would."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    message = str(timestamp).encode("ascii") + b"." + body
    expected = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    # time.monotonic() when the request arrived
    at: float

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


# An answer is a status code, or HANG: hold the request until the test ends (or 60 s).
HANG = "hang"


@dataclass
class Receiver:
    """Every POST received, and how to answer: `answers` first, one per request, then 200."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: list[int | str] = field(default_factory=list)
    answer_body: bytes = b'{"ok": true}'
    # Headers added to every answer, e.g. {"Retry-After": "120"}.
    answer_headers: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hooks/rally", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def of_type(self, event_type: str) -> list[Received]:
        return [item for item in self.all() if item.payload.get("type") == event_type]


@contextmanager
def webhook_endpoint() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrived = time.monotonic()
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers), body, arrived))
                answer = receiver.answers.pop(0) if receiver.answers else 200
            if answer == HANG:
                receiver.released.wait(timeout=60)
                answer = 200
            self.send_response(int(answer))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(receiver.answer_body)))
            for name, value in receiver.answer_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(receiver.answer_body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the stdlib's name
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
