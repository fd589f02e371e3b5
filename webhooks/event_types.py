"""The events a webhook subscription may hear, and reading a list of them from people."""

from django.core.exceptions import ValidationError

SIGNATURE_CREATED = "signature.created"
SUPPORTER_SUBSCRIBED = "supporter.subscribed"
SUPPORTER_UNSUBSCRIBED = "supporter.unsubscribed"
SUPPORTER_SUPPRESSED = "supporter.suppressed"
SUPPORTER_ERASED = "supporter.erased"
MAILING_SENT = "mailing.sent"

EVENT_TYPES = (
    SIGNATURE_CREATED,
    SUPPORTER_SUBSCRIBED,
    SUPPORTER_UNSUBSCRIBED,
    SUPPORTER_SUPPRESSED,
    SUPPORTER_ERASED,
    MAILING_SENT,
)
EVENT_TYPE_CHOICES = [(name, name) for name in EVENT_TYPES]


def validate_event_types(value) -> None:
    """Refuse anything but a non-empty list of known event names, each once."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.", code="no_events")
    unknown = [name for name in value if name not in EVENT_TYPES]
    if unknown:
        raise ValidationError(
            "Unknown event %(unknown)s; the events are %(known)s.",
            code="unknown_event",
            params={
                "unknown": ", ".join(repr(str(name)) for name in unknown),
                "known": ", ".join(EVENT_TYPES),
            },
        )
    if len(set(value)) != len(value):
        raise ValidationError("An event is named twice.", code="duplicate_event")


def parse_event_types(text: str) -> list[str]:
    """Return the event names in a comma-separated list, validated (ValidationError if not)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    validate_event_types(names)
    return names
