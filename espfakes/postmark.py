"""Fake Postmark's HTTP email API closely enough for anymail's real Postmark backend.

Point anymail at it with::

    ANYMAIL = {"POSTMARK_SERVER_TOKEN": esp.server_token, "POSTMARK_API_URL": esp.api_url}

Endpoints: ``POST /email``, ``/email/batch``, ``/email/withTemplate/``,
``/email/batchWithTemplates`` and ``/email/bulk``, and the outbound message search
``GET /messages/outbound`` over what it accepted (espfakes/postmark_search.py), each
authenticated by the ``X-Postmark-Server-Token`` header. Answers use Postmark's shapes:
``{"To", "SubmittedAt", "MessageID", "ErrorCode": 0, "Message": "OK"}`` per message, a JSON
list for batches, HTTP 422 with ``ErrorCode`` 300 (invalid request), 402 (invalid JSON) or 406
(inactive recipient), and HTTP 401 with ``ErrorCode`` 10 for a bad token.

Control endpoints for other processes and for people: ``GET /_fake/stats``, ``/_fake/counts``,
``/_fake/duplicates``, ``/_fake/messages?offset=0&limit=10``, ``/_fake/options``;
``POST /_fake/configure`` with a JSON object of options, ``POST /_fake/fail_next`` with
``{"count": 5, "status": 429}`` and ``POST /_fake/reset``.

With ``webhook_url`` set it also posts Postmark's tracking webhooks (Delivery, Bounce,
SpamComplaint) about a share of the messages it accepted, after answering them.

Run it standalone with ``python -m espfakes.postmark --port 8025``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from espfakes.base import DEFAULT_SAMPLE_SIZE, LOCALHOST
from espfakes.cli import run_main
from espfakes.options import address_list
from espfakes.postmark_app import DEFAULT_TOKEN, PostmarkApp
from espfakes.process import FakeServerProcess

__all__ = ["FakePostmark", "PostmarkApp"]


class FakePostmark(FakeServerProcess):
    """Run a fake Postmark API in a child process; use it as a context manager.

    ``stats()`` keys: ``requests`` (API calls), ``accepted`` and ``rejected`` (messages; rejected
    means every recipient was inactive), ``inactive_recipients``, ``invalid`` (ErrorCode
    300/402, or 700 for a bad search), ``searches``, ``unauthorized``, ``errors_429``,
    ``errors_5xx``, ``dropped``, ``connections`` (TCP connections opened), ``pending_failures``
    (left from ``fail_next``), and for tracking webhooks ``webhooks_queued``,
    ``webhooks_posted`` and ``webhooks_failed``.

    With ``webhook_url`` (credentials in it become basic auth) it posts Postmark's tracking
    webhooks about accepted messages after answering: ``webhook_bounce_rate`` of them hard-
    bounce, ``webhook_complaint_rate`` draw a spam complaint and ``webhook_delivery_rate`` of
    the rest a delivery, after ``webhook_delay_ms`` (espfakes/postmark_webhooks.py).

    Accepted messages become searchable ``search_lag_ms`` after they were accepted, as
    Postmark's search index runs behind its API.
    """

    module = "espfakes.postmark"

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_drop: float = 0.0,
        reject_recipients: Iterable[str] = (),
        record_bodies: bool = True,
        seed: int | None = 0,
        server_token: str = DEFAULT_TOKEN,
        retry_after: int = 1,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        webhook_url: str = "",
        webhook_delivery_rate: float = 0.0,
        webhook_bounce_rate: float = 0.0,
        webhook_complaint_rate: float = 0.0,
        webhook_delay_ms: float = 0.0,
        search_lag_ms: float = 0.0,
        port: int = 0,
    ) -> None:
        super().__init__(
            port=port,
            latency_ms=latency_ms,
            rate_429=rate_429,
            rate_500=rate_500,
            rate_drop=rate_drop,
            reject_recipients=address_list(reject_recipients),
            record_bodies=record_bodies,
            seed=seed,
            server_token=server_token,
            retry_after=retry_after,
            sample_size=sample_size,
            webhook_url=webhook_url,
            webhook_delivery_rate=webhook_delivery_rate,
            webhook_bounce_rate=webhook_bounce_rate,
            webhook_complaint_rate=webhook_complaint_rate,
            webhook_delay_ms=webhook_delay_ms,
            search_lag_ms=search_lag_ms,
        )
        self._server_token = server_token

    @property
    def api_url(self) -> str:
        """Return the base URL to use as anymail's ``POSTMARK_API_URL``."""
        return f"http://{LOCALHOST}:{self.port}/"

    @property
    def control_url(self) -> str:
        """Return the base URL of the HTTP control endpoints (``.../_fake/stats`` etc.)."""
        return f"{self.api_url}_fake/"

    @property
    def server_token(self) -> str:
        """Return the server token the fake accepts."""
        return self._server_token

    def anymail_settings(self) -> dict[str, str]:
        """Return the ``ANYMAIL`` settings that point anymail's Postmark backend here."""
        return {"POSTMARK_SERVER_TOKEN": self.server_token, "POSTMARK_API_URL": self.api_url}

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change options at runtime (rates, latency, rejected recipients, token...)."""
        if "reject_recipients" in options:
            options["reject_recipients"] = address_list(options["reject_recipients"])
        current = super().configure(**options)
        self._server_token = current["server_token"]
        return current

    def fail_next(self, n: int, status: int | str = 429) -> int:
        """Fail exactly the next ``n`` API requests; return how many forced failures are queued.

        ``status`` is 429 (with ``Retry-After``), 500, 502, 503, 504, ``"drop"`` (close the
        connection without answering) or ``"drop_after_accept"`` (record the message, then
        close without answering). Calls queue up: ``fail_next(2, 429); fail_next(1, 500)``
        fails three requests in that order. Batch calls count as one request.
        """
        return self._call("fail_next", count=n, status=status)


def main(argv: list[str] | None = None) -> int:
    """Run the fake Postmark server in the foreground, or under ``FakePostmark``'s control."""
    return run_main(
        PostmarkApp,
        argv,
        module=FakePostmark.module,
        description="Fake Postmark HTTP API on 127.0.0.1 (prints one line per request).",
        default_port=8025,
    )


if __name__ == "__main__":
    sys.exit(main())
