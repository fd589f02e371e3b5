"""A local HTTP endpoint that records the webhooks a fake ESP posts, for the fakes' own tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    payload: Any
    # time.monotonic() when it arrived
    at: float


@dataclass
class WebhookReceiver:
    """What was posted, and how to answer: `statuses` first, one per request, then 200.

    While `gate` is clear, requests wait for it: a test can hold a webhook in flight.
    """

    port: int = 0
    # Every POST, answered with an error or not.
    requests: int = 0
    received: list[ReceivedWebhook] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/anymail/postmark/tracking/", auth: str = "") -> str:
        credentials = f"{auth}@" if auth else ""
        return f"http://{credentials}127.0.0.1:{self.port}{path}"

    def payloads(self) -> list[Any]:
        with self.lock:
            return [webhook.payload for webhook in self.received]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.gate.set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as an ESP's client would use

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrived = time.monotonic()
            receiver.gate.wait(timeout=30)
            with receiver.lock:
                receiver.requests += 1
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.received.append(
                        ReceivedWebhook(self.path, dict(self.headers), json.loads(body), arrived)
                    )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

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
        receiver.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
