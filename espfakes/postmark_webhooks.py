"""Post Postmark's tracking webhooks about accepted messages, later, as the real ESP does.

``PostmarkApp`` hands each accepted message to ``WebhookPoster.message_accepted``; when a
``webhook_url`` is configured, a share of the messages draws events: a hard ``Bounce``, or a
``Delivery`` and perhaps then a ``SpamComplaint``. They go out from a background thread after
the API call was answered (and after ``webhook_delay_ms``), as JSON in Postmark's documented
webhook formats, carrying the message's ``MessageID``, ``Metadata`` and ``Tag``. Credentials in
the URL (``http://user:password@host/...``) become HTTP basic auth, as Postmark sends them.

Shares are exact, not random: each kind keeps a running total of its rate and fires whenever
that passes a whole event, so N messages draw ``floor(N × rate)`` bounces and as many
complaints, spread evenly. A complaint never falls on a bounced message (it was never
delivered) but on the next one delivered, so it may come one message late. Deliveries are a
share of the messages that did not bounce.
"""

from __future__ import annotations

import base64
import http.client
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

# What a webhook may take before it counts as failed, and how often a failed post is retried.
POST_TIMEOUT_SECONDS = 10.0
RETRIES = 3
RETRY_WAIT_SECONDS = 0.2

_BOUNCE_DESCRIPTION = (
    "The server was unable to deliver your message (ex: unknown user, mailbox not found)."
)
_BOUNCE_DETAILS = "smtp;550 5.1.1 The email account that you tried to reach does not exist."


class WebhookTarget:
    """Where webhooks go: a parsed ``http://[user:password@]host:port/path`` URL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"webhook_url must be an http:// URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {"Content-Type": "application/json", "User-Agent": "Postmark"}
        if parts.username is not None:
            credentials = f"{parts.username}:{parts.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()


def webhook_url(value: Any) -> str:
    """Convert an option value to a webhook URL ("" for none), refusing what cannot be posted."""
    url = str(value or "").strip()
    if url:
        WebhookTarget(url)
    return url


class EventDraw:
    """Decide which accepted messages draw which events, as exact shares (see the module)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._due = {"bounce": 0.0, "complaint": 0.0, "delivery": 0.0}

    def events_for(self, rates: Mapping[str, float]) -> list[str]:
        """Return the Postmark record types one more message draws, in the order they happen."""
        bounced = self._take("bounce", rates["bounce"])
        # A complaint that falls on a bounced message goes to the next one delivered.
        self._due["complaint"] += rates["complaint"]
        if bounced:
            return ["Bounce"]
        events = []
        if self._take("delivery", rates["delivery"]):
            events.append("Delivery")
        if self._take("complaint", 0.0):
            events.append("SpamComplaint")
        return events

    def _take(self, kind: str, rate: float) -> bool:
        due = self._due[kind] + rate
        fired = due >= 1.0 - 1e-9
        self._due[kind] = due - 1.0 if fired else due
        return fired


def postmark_event(
    record_type: str,
    *,
    message: Mapping[str, Any],
    message_id: str,
    recipient: str,
    event_id: int,
    at: datetime,
) -> dict[str, Any]:
    """Return one webhook payload in Postmark's format for a message it accepted."""
    common = {
        "RecordType": record_type,
        "ServerID": 23,
        "MessageStream": message.get("MessageStream") or "outbound",
        "MessageID": message_id,
        "Tag": message.get("Tag") or "",
        "Metadata": message.get("Metadata") or {},
    }
    stamp = at.isoformat()
    if record_type == "Delivery":
        return {
            **common,
            "Recipient": recipient,
            "DeliveredAt": stamp,
            "Details": "smtp;250 2.0.0 OK",
        }
    complaint = record_type == "SpamComplaint"
    return {
        **common,
        "ID": event_id,
        "Type": "SpamComplaint" if complaint else "HardBounce",
        "TypeCode": 512 if complaint else 1,
        "Name": "Spam complaint" if complaint else "Hard bounce",
        "Description": (
            "The subscriber explicitly marked this email as spam."
            if complaint
            else _BOUNCE_DESCRIPTION
        ),
        "Details": "" if complaint else _BOUNCE_DETAILS,
        "Email": recipient,
        "From": message.get("From") or "",
        "BouncedAt": stamp,
        "DumpAvailable": False,
        "Inactive": True,
        "CanActivate": not complaint,
        "Subject": message.get("Subject") or "",
        "Content": "",
    }


class WebhookPoster:
    """Queue webhook events for accepted messages and post them from one background thread.

    ``counters`` is the app's stats dict (looked up on every change, since ``reset`` replaces
    it): ``webhooks_queued``, ``webhooks_posted`` (answered 2xx) and ``webhooks_failed`` (given
    up after retries, or answered 4xx).
    """

    def __init__(self, counters: Callable[[], dict[str, int]]) -> None:
        self._counters = counters
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[int, float, WebhookTarget, bytes] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._connection: http.client.HTTPConnection | None = None
        self._connected_to: tuple[str, int] | None = None
        self._generation = 0
        # Postmark's bounce ids are numbers; a random start keeps two runs' ids apart.
        self._next_id = uuid.uuid4().int % 10**9 * 1000
        self.draw = EventDraw()
        self.target: WebhookTarget | None = None
        self.rates = {"bounce": 0.0, "complaint": 0.0, "delivery": 0.0}
        self.delay = 0.0

    def configure(self, url: str, *, rates: Mapping[str, float], delay_ms: float) -> None:
        self.target = WebhookTarget(url) if url else None
        self.rates = dict(rates)
        self.delay = delay_ms / 1000.0

    def reset(self) -> None:
        """Forget queued events (they are never posted) and restart the exact shares."""
        with self._lock:
            self._generation += 1
        self.draw.reset()

    def message_accepted(
        self, message: Mapping[str, Any], message_id: str, recipients: list[str]
    ) -> None:
        """Queue the events this accepted message draws, one set per recipient."""
        target = self.target
        if target is None:
            return
        due = time.monotonic() + self.delay
        for recipient in recipients:
            for record_type in self.draw.events_for(self.rates):
                self._next_id += 1
                body = json.dumps(
                    postmark_event(
                        record_type,
                        message=message,
                        message_id=message_id,
                        recipient=recipient,
                        event_id=self._next_id,
                        at=datetime.now(UTC),
                    )
                ).encode()
                self._count("webhooks_queued")
                self._queue.put((self._generation, due, target, body))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop posting; events still queued are dropped, as the process is ending."""
        if self._thread is not None:
            self.reset()
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _count(self, name: str) -> None:
        with self._lock:
            counters = self._counters()
            counters[name] = counters.get(name, 0) + 1

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            generation, due, target, body = item
            if generation != self._generation:
                continue
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if generation == self._generation:
                self._count("webhooks_posted" if self._post(target, body) else "webhooks_failed")
        if self._connection is not None:
            self._connection.close()

    def _post(self, target: WebhookTarget, body: bytes) -> bool:
        """Post one event over a kept-alive connection; retry what a retry may fix."""
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(RETRY_WAIT_SECONDS * attempt)
            try:
                connection = self._connection_to(target)
                connection.request("POST", target.path, body=body, headers=target.headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                self._drop_connection()
                continue
            if response.will_close:
                self._drop_connection()
            if 200 <= response.status < 300:
                return True
            if response.status < 500:
                return False  # refused (bad credentials, bad payload): retrying cannot help
        return False

    def _connection_to(self, target: WebhookTarget) -> http.client.HTTPConnection:
        if self._connection is None or self._connected_to != (target.host, target.port):
            self._drop_connection()
            self._connection = http.client.HTTPConnection(
                target.host, target.port, timeout=POST_TIMEOUT_SECONDS
            )
            self._connected_to = (target.host, target.port)
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
