"""Take in the ESP's webhook posts: store each event once and queue it, nothing more.

Every webhook view of anymail is mounted wrapped in `webhook_post_receive` (feedback/urls.py).
The ESP waits on the request and retries it when slow, and batching ESPs (SendGrid, Mailjet)
post many events at once. So a post's events are gathered while anymail's view runs (its
`tracking` signal reaches `tracking_event_receive`) and stored after it, all at once, through
a group commit: the posts that concurrent threads of one web process are answering share one
multi-row INSERT (new (esp, event id) pairs only), one commit, and one push to the `tracking`
queue carrying the new events' ids. A post is answered 2xx only once its events are committed;
a post whose write fails stores none of its events, and the ESP's retry brings them all again.
Everything else happens in mailings.feedback.processing.

A bad post gets a 4xx, never a 500. anymail raises on a body it cannot parse (json.loads, a
missing field, an SNS message that is not JSON); such a body never becomes readable, so it gets
a 400, which the ESP does not retry for days. A failed authentication (anymail's
AnymailWebhookValidationFailure) gets a 403. Both come before anything is stored: anymail
parses every event of a post before it signals the first. The URL of an ESP whose webhooks
Rally is not configured for (a signing key or package it needs is missing) answers 404 to
any request. Database and other server errors stay 500s, which the ESP retries, as it should.
"""

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import partial, wraps

from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailWebhookValidationFailure,
)
from django.db import transaction
from django.db.models import CharField
from django.http import HttpResponse
from django.utils import timezone
from django.utils.text import slugify

from config.db import insert_many_unless_exist
from config.lib.group_commit import GroupCommit
from mailings.feedback import tasks
from mailings.models import TrackingEvent

logger = logging.getLogger(__name__)

# The raw event is kept for the record and for kinds.py, not as an archive: a body past this
# is stored as a truncated excerpt. Real events are a few kilobytes.
PAYLOAD_MAX_CHARS = 32_000
LONG_TEXT_CHARS = 2_000
# Posts written together at most, and event ids per processing task (a batching ESP's post
# may carry hundreds of events; tasks stay small enough to retry whole).
MAX_POSTS_PER_WRITE = 100
EVENTS_PER_TASK = 200

# What anymail raises on a body it cannot read: the post is refused with a 400.
MALFORMED = (ValueError, KeyError, TypeError, IndexError, AttributeError, AnymailAPIError)

# The answer at the URL of an ESP that is not configured. anymail makes its view per request
# and raises AnymailConfigurationError (AnymailImproperlyInstalled for a missing package) from
# it before reading anything.
NOT_ENABLED = "This ESP's webhooks are not enabled on this server.\n"

# The events of the webhook post this thread is answering, while anymail's view runs.
_collected: ContextVar[list[dict] | None] = ContextVar("rally_tracking_events", default=None)


def tracking_event_receive(sender, event, esp_name: str, **kwargs) -> None:
    """Take one event anymail normalised (the `tracking` signal's receiver, see apps.py).

    During a webhook post it is kept for the post's one write; otherwise stored at once.
    """
    row = tracking_event_row(event=event, esp_name=esp_name)
    collected = _collected.get()
    if collected is not None:
        collected.append(row)
    else:
        tracking_events_store(rows=[row])


def webhook_post_receive(view):
    """Wrap an anymail webhook view: refuse a bad post with a 4xx, store its events all or none.

    The view runs in a transaction rolled back unless the post is answered 2xx/3xx; its events
    are stored after that, outside it, because the write is shared with other posts being
    answered at the same moment (the group commit).
    """

    @wraps(view)
    def receive(request, *args, **kwargs):
        with tracking_events_collected() as events, transaction.atomic():
            try:
                response = view(request, *args, **kwargs)
            except AnymailConfigurationError as error:
                logger.warning(
                    "An ESP webhook URL that is not configured, %s: %s", request.path_info, error
                )
                response = HttpResponse(NOT_ENABLED, status=404)
            except AnymailWebhookValidationFailure as error:
                logger.warning("Refused an ESP webhook post to %s: %s", request.path_info, error)
                response = HttpResponse("Webhook authentication failed.\n", status=403)
            except MALFORMED as error:
                logger.warning(
                    "Refused a malformed ESP webhook post to %s: %r", request.path_info, error
                )
                response = HttpResponse("Malformed webhook body.\n", status=400)
            if response.status_code >= 400:
                transaction.set_rollback(True)
        if events and response.status_code < 400:
            # Raises (a 500, the ESP retries) unless every event is committed.
            tracking_events_store(rows=events)
        return response

    return receive


@contextmanager
def tracking_events_collected() -> Iterator[list[dict]]:
    """Gather the events received within the block, to store them with tracking_events_store."""
    collected: list[dict] = []
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


def tracking_events_store(*, rows: Sequence[dict]) -> list[int]:
    """Store rows (from tracking_event_row) all or none, committed; return the new events' ids.

    Concurrent calls in one process share a transaction (the group commit); the new events
    are queued for processing once it commits. Rows already stored are left alone.
    """
    if not rows:
        return []
    return _intake.submit(list(rows))


def tracking_events_write(posts: Sequence[list[dict]]) -> list[list[int]]:
    """Write the posts' rows in one transaction; return each post's new event ids, in order.

    The group commit's batch writer. The new ids are queued once the transaction commits: at
    once when this is the outermost transaction, as the group commit's leader writes.
    """
    rows, seen = [], set()
    for post in posts:
        for row in post:
            if (row["esp"], row["event_id"]) not in seen:
                seen.add((row["esp"], row["event_id"]))
                rows.append(row)
    with transaction.atomic():
        inserted = insert_many_unless_exist(TrackingEvent, rows, key=("esp", "event_id"))
        if inserted:
            # Robust: the events are committed whatever Redis says; a push that fails is made
            # good by the sweep (tracking_event_sweep), and the ESP still hears 200.
            transaction.on_commit(
                partial(tracking_events_queue, event_pks=sorted(inserted.values())), robust=True
            )
    new_ids = []
    for post in posts:
        ids = []
        for row in post:
            pk = inserted.pop((row["esp"], row["event_id"]), None)
            if pk is not None:
                ids.append(pk)
        new_ids.append(ids)
    return new_ids


def tracking_events_queue(*, event_pks: Sequence[int]) -> None:
    """Queue stored events for processing, EVENTS_PER_TASK ids to a task."""
    for start in range(0, len(event_pks), EVENTS_PER_TASK):
        tasks.tracking_events_process_task.delay(list(event_pks[start : start + EVENTS_PER_TASK]))


_intake: GroupCommit[list[dict], list[int]] = GroupCommit(
    tracking_events_write, max_batch=MAX_POSTS_PER_WRITE
)


def tracking_event_row(*, event, esp_name: str) -> dict:
    """Return the TrackingEvent row for an event anymail normalised (ESPs send what they like)."""
    esp = esp_slug(esp_name)
    recipient = _text(event.recipient, "recipient")
    message_id = _text(event.message_id, "message_id")
    occurred_at = _aware(event.timestamp)
    now = timezone.now()
    return {
        "esp": esp,
        "event_id": tracking_event_id(
            esp=esp,
            esp_event_id=event.event_id,
            message_id=message_id,
            event_type=event.event_type or "",
            recipient=recipient,
            occurred_at=occurred_at,
        ),
        "event_type": _text(event.event_type, "event_type"),
        "reject_reason": _text(event.reject_reason, "reject_reason"),
        "message_id": message_id,
        "recipient": recipient,
        "occurred_at": occurred_at or now,
        "description": _text(event.description or event.mta_response, "description"),
        "payload": json_safe_payload(event.esp_event),
        "metadata": json_safe_payload(event.metadata or {}),
        "created_at": now,
        "outcome": "",
    }


def esp_slug(esp_name: str) -> str:
    """Return anymail's ESP name as stored in TrackingEvent.esp: "Amazon SES" → "amazon_ses"."""
    return slugify(esp_name or "unknown").replace("-", "_")[:50]


def tracking_event_id(
    *,
    esp: str,
    esp_event_id,
    message_id: str,
    event_type: str,
    recipient: str,
    occurred_at: datetime | None,
) -> str:
    """Return the id that deduplicates an event: the ESP's own, or a digest of what names it.

    Amazon SES gives one SNS notification id to the events of all its recipients, so there the
    recipient is part of the id. ESPs that give no id (Brevo, Mailjet, Postmark's deliveries,
    opens and clicks) get a digest of the fields a retry repeats exactly.
    """
    if esp_event_id:
        event_id = _clean(str(esp_event_id))
        if esp == "amazon_ses":
            event_id = f"{event_id}:{recipient}"
        if len(event_id) <= 255:
            return event_id
    parts = [
        esp,
        str(esp_event_id or ""),
        message_id,
        event_type,
        recipient.lower(),
        occurred_at.isoformat() if occurred_at else "",
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"sha256:{digest}"


def json_safe_payload(esp_event):
    """Return the raw ESP event as something a JSONField stores on PostgreSQL and SQLite.

    anymail hands parsed JSON (a dict) for most ESPs, a QueryDict for Mailgun's legacy form
    posts; anything else is kept as its text. PostgreSQL's jsonb refuses NUL characters, which
    a hostile body may carry, so they are dropped.
    """
    if hasattr(esp_event, "lists"):
        # A QueryDict: one value per field unless the ESP repeated it.
        esp_event = {
            key: values[0] if len(values) == 1 else values for key, values in esp_event.lists()
        }
    try:
        text = json.dumps(esp_event, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        # A circular structure, or keys json cannot write: keep the text of it.
        text = json.dumps(str(esp_event), ensure_ascii=False)
    # Read back, so what is stored is plain JSON (dates written by default=str, and so on).
    payload = json.loads(text)
    if "\\u0000" in text:
        payload = _without_nul(payload)
    if len(text) > PAYLOAD_MAX_CHARS:
        # Long texts (a bounce's copy of the message) go first: the fields kinds.py reads
        # are short, and stay.
        payload = _shortened(payload)
        text = json.dumps(payload, ensure_ascii=False)
        if len(text) > PAYLOAD_MAX_CHARS:
            return {"truncated": True, "excerpt": text[:PAYLOAD_MAX_CHARS]}
    return payload


def _shortened(value):
    if isinstance(value, str) and len(value) > LONG_TEXT_CHARS:
        return value[:LONG_TEXT_CHARS] + " [truncated]"
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item) for item in value]
    return value


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _clean(value: str) -> str:
    return value.replace("\x00", "")


def _text(value, field_name: str) -> str:
    """Return a field's value as text that fits its column (ESPs send what they like)."""
    if value is None:
        return ""
    text = _clean(str(value))
    field = TrackingEvent._meta.get_field(field_name)
    if isinstance(field, CharField) and field.max_length:
        return text[: field.max_length]
    return text


def _aware(timestamp) -> datetime | None:
    if not isinstance(timestamp, datetime):
        return None
    if timezone.is_naive(timestamp):
        return timestamp.replace(tzinfo=UTC)
    return timestamp
