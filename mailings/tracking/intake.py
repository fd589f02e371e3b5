"""Receive anymail's tracking signal: store each event once and queue it, nothing more.

The ESP waits on the request and retries it when slow, and batching ESPs (SendGrid, Mailjet)
post many events at once; so each event costs one INSERT and, when it was new, one push to the
`tracking` queue. Everything else happens in mailings.tracking.processing.
"""

import hashlib
import json
import logging
from datetime import UTC, datetime

from django.db.models import CharField
from django.utils import timezone
from django.utils.text import slugify

from config.db import insert_unless_exists
from mailings import tasks
from mailings.models import TrackingEvent

logger = logging.getLogger(__name__)

# The raw event is kept for the record and for kinds.py, not as an archive: a body past this
# is stored as a truncated excerpt. Real events are a few kilobytes.
PAYLOAD_MAX_CHARS = 32_000
LONG_TEXT_CHARS = 2_000


def tracking_event_receive(sender, event, esp_name: str, **kwargs) -> None:
    """Store one event anymail normalised (the `tracking` signal's receiver, see apps.py)."""
    tracking_event_store(event=event, esp_name=esp_name)


def tracking_event_store(*, event, esp_name: str) -> int | None:
    """Insert the event unless (esp, event id) is stored already; queue it if new.

    Return the new TrackingEvent's id, or None for a duplicate (an ESP's retry or a replay),
    which is neither stored nor queued again.
    """
    esp = esp_slug(esp_name)
    recipient = _text(event.recipient, "recipient")
    message_id = _text(event.message_id, "message_id")
    occurred_at = _aware(event.timestamp)
    event_id = tracking_event_id(
        esp=esp,
        esp_event_id=event.event_id,
        message_id=message_id,
        event_type=event.event_type or "",
        recipient=recipient,
        occurred_at=occurred_at,
    )
    now = timezone.now()
    event_pk = insert_unless_exists(
        TrackingEvent,
        esp=esp,
        event_id=event_id,
        event_type=_text(event.event_type, "event_type"),
        reject_reason=_text(event.reject_reason, "reject_reason"),
        message_id=message_id,
        recipient=recipient,
        occurred_at=occurred_at or now,
        description=_text(event.description or event.mta_response, "description"),
        payload=json_safe_payload(event.esp_event),
        metadata=json_safe_payload(event.metadata or {}),
        created_at=now,
        outcome="",
    )
    if event_pk is not None:
        tasks.tracking_event_process_task.delay_on_commit(event_pk)
    return event_pk


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
