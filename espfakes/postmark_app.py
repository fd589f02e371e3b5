"""Answer Postmark's HTTP email API: authentication, endpoints, injected faults, records.

``FakePostmark`` (espfakes/postmark.py) runs this in a child process; its docstring lists the
endpoints and the answers.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from espfakes._http import Request, Response, start_http_server
from espfakes.base import LOCALHOST, FakeApp
from espfakes.encoding import dumps
from espfakes.options import address_set, non_negative, non_negative_int, rate
from espfakes.postmark_messages import InvalidMessage, message_entry, validate_message
from espfakes.postmark_search import MessageIndex, SearchError, error_body
from espfakes.postmark_webhooks import WebhookPoster, webhook_url

DEFAULT_TOKEN = "fake-token"  # noqa: S105 - a fake server's well-known token, not a secret
BATCH_LIMIT = 500  # Postmark's documented maximum per batch call
FORCEABLE_STATUSES = (429, 500, 502, 503, 504, "drop", "drop_after_accept")

_INACTIVE_ALL = (
    "You tried to send to recipient(s) that have been marked as inactive.\n"
    "Found inactive addresses: {addresses}.\n"
    "Inactive recipients are ones that have generated a hard bounce or a spam complaint. "
)
_INACTIVE_SOME = (
    "Message OK, but will not deliver to these inactive addresses: {addresses}. "
    "Inactive recipients are ones that have generated a hard bounce or a spam complaint."
)
_BAD_TOKEN = dumps(
    {
        "ErrorCode": 10,
        "Message": "The Server Token you provided in the X-Postmark-Server-Token request header "
        "was invalid. Please verify that you are using a valid token.",
    }
)
_NO_TOKEN = dumps(
    {
        "ErrorCode": 10,
        "Message": "No Account or Server API tokens were supplied in the HTTP headers. Please add "
        "a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.",
    }
)
_BAD_JSON = dumps({"ErrorCode": 402, "Message": "Received invalid JSON input."})
_NOT_FOUND = dumps({"ErrorCode": 0, "Message": "Not found."})


class PostmarkApp(FakeApp):
    """Answer Postmark API requests, inject faults and record accepted messages."""

    name = "FakePostmark"
    option_spec = {
        **FakeApp.option_spec,
        "latency_ms": (0.0, non_negative),
        "rate_429": (0.0, rate),
        "rate_500": (0.0, rate),
        "rate_drop": (0.0, rate),
        "reject_recipients": (frozenset(), address_set),
        "retry_after": (1, non_negative_int),
        "server_token": (DEFAULT_TOKEN, str),
        # Tracking webhooks about accepted messages (espfakes/postmark_webhooks.py).
        "webhook_url": ("", webhook_url),
        "webhook_delivery_rate": (0.0, rate),
        "webhook_bounce_rate": (0.0, rate),
        "webhook_complaint_rate": (0.0, rate),
        "webhook_delay_ms": (0.0, non_negative),
        # How far the outbound message search runs behind the API (espfakes/postmark_search.py).
        "search_lag_ms": (0.0, non_negative),
    }
    stat_keys = (
        "requests",
        "accepted",
        "rejected",
        "inactive_recipients",
        "invalid",
        "searches",
        "unauthorized",
        "errors_429",
        "errors_5xx",
        "dropped",
        "connections",
        "webhooks_queued",
        "webhooks_posted",
        "webhooks_failed",
    )

    def __init__(self, options: Mapping[str, Any] | None = None, echo: Any = None) -> None:
        # Message ids look like UUIDs: a random per-process prefix plus a counter, which is
        # unique, cheap, and never restarts on reset() (an id must not be handed out twice).
        self._id_prefix = str(uuid.uuid4())[:24]
        self._sequence = 0
        self._server: Any = None
        self.webhooks = WebhookPoster(lambda: self.stats)
        super().__init__(options, echo)
        self.search_index = MessageIndex(self.recorder)

    def validate(self, options: Mapping[str, Any]) -> None:
        """Refuse fault rates that add up to more than every request."""
        total = options["rate_429"] + options["rate_500"] + options["rate_drop"]
        if total > 1.0:
            raise ValueError(f"rate_429 + rate_500 + rate_drop must be <= 1, got {total}")
        undelivered = options["webhook_bounce_rate"] + options["webhook_complaint_rate"]
        if undelivered > 1.0:
            raise ValueError(
                f"webhook_bounce_rate + webhook_complaint_rate must be <= 1, got {undelivered}"
            )

    def options_changed(self) -> None:
        """Cache the options read on every request."""
        options = self.options
        self._delay = options["latency_ms"] / 1000.0
        self._bands = [
            (options["rate_drop"], "drop"),
            (options["rate_429"], 429),
            (options["rate_500"], "5xx"),
        ]
        self._reject: frozenset[str] = options["reject_recipients"]
        self._token = options["server_token"].encode("latin-1")
        self.webhooks.configure(
            options["webhook_url"],
            rates={
                "delivery": options["webhook_delivery_rate"],
                "bounce": options["webhook_bounce_rate"],
                "complaint": options["webhook_complaint_rate"],
            },
            delay_ms=options["webhook_delay_ms"],
        )

    def reset(self) -> None:
        """Also forget webhooks not posted yet, and restart their shares."""
        super().reset()
        self.webhooks.reset()
        self.search_index.reset()

    def parse_fail_next(self, args: Mapping[str, Any]) -> Any:
        """Accept ``status``: 429, 500, 502, 503, 504, ``"drop"`` or ``"drop_after_accept"``."""
        status = args.get("status", 429)
        if isinstance(status, str) and status.isdigit():  # from a query string
            status = int(status)
        if status not in FORCEABLE_STATUSES:
            raise ValueError(f"status must be one of {FORCEABLE_STATUSES}, got {status!r}")
        return status

    def info(self) -> dict[str, Any]:
        """Describe the server, including its API URL and token."""
        return {
            **super().info(),
            "api_url": f"http://{LOCALHOST}:{self.port}/",
            "server_token": self.options["server_token"],
        }

    def banner(self) -> str:
        """Return the startup line with the settings anymail needs."""
        settings = {
            "POSTMARK_SERVER_TOKEN": self.options["server_token"],
            "POSTMARK_API_URL": f"http://{LOCALHOST}:{self.port}/",
        }
        return (
            f"FakePostmark listening on http://{LOCALHOST}:{self.port}/ "
            f"(control: /_fake/stats); ANYMAIL = {json.dumps(settings)}"
        )

    async def start(self, port: int) -> None:
        """Listen for HTTP on 127.0.0.1:``port``."""
        self._server = await start_http_server(self, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening; open connections end with the process."""
        if self._server is not None:
            self._server.close()
        self.webhooks.stop()

    # HTTPApp protocol -------------------------------------------------------------------------

    def connection_opened(self) -> None:
        """Count connections, so tests can check that clients reuse them."""
        self.stats["connections"] += 1

    def delay_for(self, request: Request) -> float:
        """Apply the configured latency to API requests, never to control requests."""
        if request.path.startswith("/_fake/"):
            return 0.0
        return self._delay

    def handle(self, request: Request) -> Response | None:
        """Answer one request: control, injected fault, or the Postmark API."""
        if request.path.startswith("/_fake/"):
            return self.handle_control_http(request)
        stats = self.stats
        stats["requests"] += 1
        outcome = self.faults.take_forced()
        if outcome is None:
            outcome = self.faults.pick(self._bands)
            if outcome == "5xx":
                outcome = self.faults.rng.choice((500, 503))
        if outcome == "drop":
            stats["dropped"] += 1
            self.say(f"fault: dropped connection on {request.method} {request.path}")
            return None
        if outcome == 429:
            stats["errors_429"] += 1
            self.say(f"fault: 429 on {request.method} {request.path}")
            body = dumps({"ErrorCode": 429, "Message": "Rate limit exceeded."})
            retry_after = str(self.options["retry_after"])
            return Response(429, body, headers=[("Retry-After", retry_after)])
        if isinstance(outcome, int):
            stats["errors_5xx"] += 1
            self.say(f"fault: {outcome} on {request.method} {request.path}")
            return Response(outcome, dumps({"ErrorCode": outcome, "Message": "Server error."}))
        response = self._api(request)
        if outcome == "drop_after_accept":
            # The message is recorded but the client never hears so: a lost response.
            stats["dropped"] += 1
            self.say(f"fault: dropped response on {request.method} {request.path}")
            return None
        return response

    # Postmark API -----------------------------------------------------------------------------

    def _api(self, request: Request) -> Response:
        token = request.headers.get(b"x-postmark-server-token")
        if token != self._token:
            self.stats["unauthorized"] += 1
            self.say(f"401 bad server token on {request.path}")
            return Response(401, _NO_TOKEN if token is None else _BAD_TOKEN)
        endpoint = request.path.rstrip("/").lower()
        if endpoint == "/messages/outbound" and request.method == "GET":
            return self._search(request)
        if request.method != "POST":
            return Response(405 if endpoint.startswith("/email") else 404, _NOT_FOUND)
        if endpoint not in _ENDPOINTS:
            return Response(404, _NOT_FOUND)
        try:
            data = json.loads(request.body)
        except ValueError:
            self.stats["invalid"] += 1
            return Response(422, _BAD_JSON)
        submitted_at = datetime.now(UTC).isoformat()
        return getattr(self, _ENDPOINTS[endpoint])(data, submitted_at)

    def _search(self, request: Request) -> Response:
        self.stats["searches"] += 1
        try:
            body = self.search_index.search(
                request.query_args(), lag_seconds=self.options["search_lag_ms"] / 1000.0
            )
        except SearchError as exc:
            self.stats["invalid"] += 1
            self.say(f"422 search: {exc}")
            return Response(422, error_body(str(exc)))
        return Response(200, body)

    def _email(self, data: Any, submitted_at: str) -> Response:
        code, result = self._accept(data, submitted_at, templated=False)
        return Response(200 if code == 0 else 422, dumps(result))

    def _email_with_template(self, data: Any, submitted_at: str) -> Response:
        code, result = self._accept(data, submitted_at, templated=True)
        return Response(200 if code == 0 else 422, dumps(result))

    def _batch(self, data: Any, submitted_at: str) -> Response:
        return self._many(data, submitted_at, templated=False)

    def _batch_with_templates(self, data: Any, submitted_at: str) -> Response:
        messages = data.get("Messages") if isinstance(data, dict) else None
        return self._many(messages, submitted_at, templated=True)

    def _many(self, messages: Any, submitted_at: str, templated: bool) -> Response:
        if not isinstance(messages, list):
            self.stats["invalid"] += 1
            return Response(422, _BAD_JSON)
        if len(messages) > BATCH_LIMIT:
            self.stats["invalid"] += 1
            message = f"Batch size exceeds the limit of {BATCH_LIMIT} messages."
            return Response(422, dumps({"ErrorCode": 300, "Message": message}))
        # Postmark answers a batch with HTTP 200 and one result (maybe an error) per message.
        results = [self._accept(m, submitted_at, templated)[1] for m in messages]
        return Response(200, dumps(results))

    def _bulk(self, data: Any, submitted_at: str) -> Response:
        messages = data.get("Messages") if isinstance(data, dict) else None
        if not isinstance(messages, list):
            self.stats["invalid"] += 1
            body = dumps({"ErrorCode": 300, "Message": "The 'Messages' field is required."})
            return Response(422, body)
        shared = {key: value for key, value in data.items() if key != "Messages"}
        for item in messages:
            # Bulk sends are asynchronous at Postmark: per-message errors are not reported.
            self._accept({**shared, **item} if isinstance(item, dict) else item, submitted_at)
        result = {
            "ID": str(uuid.uuid4()),
            "Status": "Accepted",
            "SubmittedAt": submitted_at,
            "TotalMessages": len(messages),
            # anymail recognises a bulk response by this key.
            "PercentageCompleted": 0.0,
        }
        return Response(200, dumps(result))

    def _accept(
        self, message: Any, submitted_at: str, templated: bool | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Validate and record one message; return its ErrorCode and Postmark result."""
        stats = self.stats
        try:
            addresses = validate_message(message, templated)
        except InvalidMessage as exc:
            stats["invalid"] += 1
            self.say(f"422 invalid: {exc}")
            return 300, {"ErrorCode": 300, "Message": str(exc)}
        recipients = list(dict.fromkeys(addresses["To"] + addresses["Cc"] + addresses["Bcc"]))
        text = "OK"
        if self._reject:
            inactive = [address for address in recipients if address in self._reject]
            if inactive:
                stats["inactive_recipients"] += len(inactive)
                if len(inactive) == len(recipients):
                    stats["rejected"] += 1
                    self.say(f"422 inactive recipient(s): {', '.join(inactive)}")
                    text = _INACTIVE_ALL.format(addresses=", ".join(inactive))
                    return 406, {"ErrorCode": 406, "Message": text}
                recipients = [address for address in recipients if address not in self._reject]
                text = _INACTIVE_SOME.format(addresses=", ".join(inactive))

        self._sequence += 1
        message_id = f"{self._id_prefix}{self._sequence:012x}"
        stats["accepted"] += 1
        entry = message_entry(
            message,
            message_id,
            recipients,
            addresses,
            details=self.wants_details(),
            bodies=self.options["record_bodies"],
        )
        self.recorder.add(recipients, entry)
        self.webhooks.message_accepted(message, message_id, recipients)
        if self.echo is not None:
            self.say(
                f"accepted {message_id} to={','.join(recipients)} "
                f"subject={message.get('Subject')!r} metadata={message.get('Metadata') or {}}"
            )
        result: dict[str, Any] = {}
        if "To" in message:
            result["To"] = message["To"]
        result.update(SubmittedAt=submitted_at, MessageID=message_id, ErrorCode=0, Message=text)
        return 0, result

    # Command line -----------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add Postmark's fault and token options."""
        super().add_arguments(parser)
        parser.add_argument("--token", dest="server_token", default=DEFAULT_TOKEN)
        parser.add_argument("--latency-ms", dest="latency_ms", type=float, default=0.0)
        parser.add_argument("--rate-429", dest="rate_429", type=float, default=0.0)
        parser.add_argument("--rate-500", dest="rate_500", type=float, default=0.0)
        parser.add_argument("--rate-drop", dest="rate_drop", type=float, default=0.0)
        parser.add_argument("--retry-after", dest="retry_after", type=int, default=1)
        parser.add_argument(
            "--reject",
            dest="reject_recipients",
            action="append",
            metavar="ADDRESS",
            help="answer 422/406 'inactive recipient' for this address (repeatable)",
        )
        parser.add_argument(
            "--webhook-url",
            dest="webhook_url",
            default="",
            help="post tracking webhooks here, e.g. http://user:password@host/anymail/postmark/"
            "tracking/",
        )
        for kind in ("delivery", "bounce", "complaint"):
            parser.add_argument(
                f"--webhook-{kind}-rate",
                dest=f"webhook_{kind}_rate",
                type=float,
                default=0.0,
                help=f"share of accepted messages that draw a {kind} webhook",
            )
        parser.add_argument("--webhook-delay-ms", dest="webhook_delay_ms", type=float, default=0.0)
        parser.add_argument(
            "--search-lag-ms",
            dest="search_lag_ms",
            type=float,
            default=0.0,
            help="make accepted messages searchable (GET /messages/outbound) only after this long",
        )


_ENDPOINTS = {
    "/email": "_email",
    "/email/withtemplate": "_email_with_template",
    "/email/batch": "_batch",
    "/email/batchwithtemplates": "_batch_with_templates",
    "/email/bulk": "_bulk",
}
