"""Answer Postmark's outbound message search over what the fake accepted.

``GET /messages/outbound`` as Postmark documents it (developer/api/messages-api): ``count``
(required, 1 to 500) and ``offset`` (required, 0 or more), with ``count + offset`` at most
10,000; filters ``recipient``, ``fromemail``, ``tag``, ``subject``, ``status``,
``messagestream``, ``fromdate`` and ``todate`` (inclusive, in US Eastern time, as
``2021-01-01`` or ``2021-01-01T12:00:00``) and one ``metadata_<key>=<value>`` ("you can
currently only search by a single metadata field at a time"). Bad parameters are answered as
Postmark answers them: HTTP 422 with ``ErrorCode`` 700, "Messages query exception". The answer
is ``{"TotalCount": n, "Messages": [...]}``, the most recent first.

Messages become searchable ``search_lag_ms`` after they were accepted, as Postmark's search
index runs a little behind its API.

Used by ``PostmarkApp`` (espfakes/postmark_app.py). The index is built from the recorder only
when a search comes, so a benchmark that never searches pays nothing for it. Only what the
recorder kept can be filtered on: without ``record_bodies``, messages past ``sample_size`` have
no subject, sender or tag.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from espfakes.encoding import dumps
from espfakes.recording import Recorder

PAGE_LIMIT = 500  # the most messages one search answers with
SEARCH_LIMIT = 10_000  # count + offset may not go past this
EASTERN = ZoneInfo("America/New_York")  # Postmark's API reads and writes times in US Eastern
STATUSES = ("queued", "sent", "processed")
_TEXT_FILTERS = ("recipient", "fromemail", "tag", "subject", "status", "messagestream")


class SearchError(ValueError):
    """A search Postmark would refuse with 422 and ``ErrorCode`` 700."""


def error_body(reason: str) -> bytes:
    return dumps(
        {
            "ErrorCode": 700,
            "Message": f"Messages query exception: {reason} You provided invalid querystring "
            "parameters in your request. Refer to the Messages API reference for a list of "
            "accepted querystring parameters.",
        }
    )


class MessageIndex:
    """Hold a searchable copy of the recorded messages, caught up with the recorder on use."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._messages: list[dict[str, Any]] = []

    def reset(self) -> None:
        self._messages = []

    def search(self, args: Mapping[str, str], *, lag_seconds: float) -> bytes:
        """Return the JSON answer to a search with query ``args``; raise SearchError if bad."""
        count = _bounded_int(args, "count", 1, PAGE_LIMIT)
        offset = _bounded_int(args, "offset", 0, SEARCH_LIMIT)
        if count + offset > SEARCH_LIMIT:
            raise SearchError(f"Count + Offset cannot exceed {SEARCH_LIMIT} messages.")
        metadata = {name[9:]: value for name, value in args.items() if name.startswith("metadata_")}
        if len(metadata) > 1:
            raise SearchError("Only one metadata field can be searched at a time.")
        if "" in metadata:
            raise SearchError("A metadata filter needs a field name after 'metadata_'.")
        status = args.get("status", "").lower()
        if status and status not in STATUSES:
            raise SearchError(f"Status must be one of {', '.join(STATUSES)}.")
        since = _eastern_time(args, "fromdate", end_of_day=False)
        until = _eastern_time(args, "todate", end_of_day=True)
        self._catch_up()
        visible_before = time.time() - lag_seconds
        texts = {name: args[name].lower() for name in _TEXT_FILTERS if args.get(name)}
        found = [
            message
            for message in reversed(self._messages)
            if message["accepted_at"] <= visible_before
            and (since is None or message["accepted_at"] >= since)
            and (until is None or message["accepted_at"] <= until)
            and all(str(message["metadata"].get(k)) == v for k, v in metadata.items())
            and all(_matches(message, name, value) for name, value in texts.items())
        ]
        page = found[offset : offset + count]
        return dumps({"TotalCount": len(found), "Messages": [_summary(m) for m in page]})

    def _catch_up(self) -> None:
        known = len(self._messages)
        if len(self._recorder) > known:
            self._messages.extend(json.loads(self._recorder.messages_json(known)))


def _bounded_int(args: Mapping[str, str], name: str, low: int, high: int) -> int:
    if name not in args:
        raise SearchError(f"The '{name}' parameter is required.")
    try:
        value = int(args[name])
    except ValueError:
        raise SearchError(f"'{name}' must be a whole number.") from None
    if not low <= value <= high:
        raise SearchError(f"'{name}' must be between {low} and {high}.")
    return value


def _eastern_time(args: Mapping[str, str], name: str, *, end_of_day: bool) -> float | None:
    """Read a date or date-time in US Eastern time as a Unix time; a bare date spans its day."""
    value = args.get(name)
    if not value:
        return None
    try:
        if "T" in value:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=EASTERN)
            return moment.timestamp()
        day = date.fromisoformat(value)
    except ValueError:
        raise SearchError(f"'{name}' is not a date such as 2021-01-01T12:00:00.") from None
    start = datetime(day.year, day.month, day.day, tzinfo=EASTERN)
    if end_of_day:
        start += timedelta(days=1) - timedelta(microseconds=1)
    return start.timestamp()


def _matches(message: dict[str, Any], name: str, value: str) -> bool:
    """Tell whether a message passes one text filter (compared without regard to case)."""
    if name == "recipient":
        return value in message["recipients"]
    if name == "status":
        return value == "sent"  # the fake hands every message over at once
    if name == "messagestream":
        # Postmark's default transactional stream, when the message named none.
        return (message.get("message_stream") or "outbound").lower() == value
    field = {"fromemail": "from", "tag": "tag", "subject": "subject"}[name]
    found = message.get(field)
    if not isinstance(found, str):
        return False  # not recorded (see the module's docstring)
    return value in found.lower() if name in ("fromemail", "subject") else found.lower() == value


def _summary(message: dict[str, Any]) -> dict[str, Any]:
    """Return a message as Postmark's search lists it."""
    received = datetime.fromtimestamp(message["accepted_at"], UTC).astimezone(EASTERN)
    return {
        "Tag": message.get("tag") or "",
        "MessageID": message["message_id"],
        "MessageStream": message.get("message_stream") or "outbound",
        "To": [{"Email": address, "Name": None} for address in message.get("to") or []],
        "Cc": [{"Email": address, "Name": None} for address in message.get("cc") or []],
        "Bcc": [{"Email": address, "Name": None} for address in message.get("bcc") or []],
        "Recipients": message["recipients"],
        "ReceivedAt": received.isoformat(),
        "From": message.get("from") or "",
        "Subject": message.get("subject") or "",
        "Attachments": [],
        "Status": "Sent",
        "TrackOpens": False,
        "TrackLinks": "None",
        "Metadata": message["metadata"],
        "Sandboxed": False,
    }
