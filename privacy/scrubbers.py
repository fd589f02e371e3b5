"""Where a person's data lives, table by table, and how erasure takes it out of each.

SCRUBBERS is the one list erasure walks (privacy/services.py) and the confirmation page shows.
A table that comes to hold personal data gets a Scrubber here: rows found by the supporter's
id or by the address itself (events from an ESP, test sends, logs name the address without
any supporter id), and a scrub that deletes them or keeps them as anonymous counts.

The supporter row comes last: every scrubber before it may still find rows by its id.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from django.contrib.admin.models import LogEntry
from django.db.models import Model, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import Delivery, LinkClick, MailingAuditEntry, OutboxMessage, TrackingEvent
from supporters.models import (
    ConsentRecord,
    Engagement,
    Supporter,
    SupporterAuditEntry,
    SupporterImportRejection,
)

# What an erased address becomes wherever text that quoted it is kept.
ERASED_TEXT = "[erased]"


# Around a match, characters that would make it part of a longer address: erasing
# ann@example.org must leave joann@example.org and ann@example.org.uk alone. Both PostgreSQL's
# regular expressions and Python's (SQLite's REGEXP) read these the same way.
_NOT_AFTER_LOCAL_PART = r"(^|[^a-z0-9._%+-])"
_NOT_BEFORE_DOMAIN_PART = r"(?![a-z0-9-]|\.[a-z0-9])"


@dataclass(frozen=True)
class ErasureSubject:
    """Say whom to erase: a supporter's id, and their address normalised as Supporter stores it.

    `supporter_id` is None when Rally holds no supporter with the address.
    """

    supporter_id: int | None
    email: str

    def spellings(self) -> list[str]:
        """Return the address as text may quote it: as typed, URL-encoded, JSON-escaped."""
        forms = {self.email, quote(self.email, safe=""), json.dumps(self.email)[1:-1]}
        return sorted(forms)

    def _patterns(self) -> list[str]:
        return [
            _NOT_AFTER_LOCAL_PART + re.escape(spelling) + _NOT_BEFORE_DOMAIN_PART
            for spelling in self.spellings()
        ]

    def names(self, *fields: str) -> Q:
        """Return a condition matching rows where any of `fields` quotes the whole address."""
        condition = Q()
        for field in fields:
            for spelling, pattern in zip(self.spellings(), self._patterns(), strict=True):
                # The plain substring test first: cheap, and it rules out nearly every row.
                condition |= Q(**{f"{field}__icontains": spelling, f"{field}__iregex": pattern})
        return condition

    def blot_out(self, text: str) -> str:
        """Return `text` with every spelling of the address replaced, whatever its case."""
        for pattern in self._patterns():
            text = re.sub(
                pattern, lambda match: match.group(1) + ERASED_TEXT, text, flags=re.IGNORECASE
            )
        return text


@dataclass(frozen=True)
class Scrubber:
    """How one table gives up a person's data.

    `rows` finds the rows that hold it; `scrub` removes it from them and returns how many it
    changed. A scrub must be safe to run twice, and leave nothing that names the person.
    """

    label: str  # what the confirmation page lists, e.g. "Consent records"
    effect: str  # what happens to the rows, in words: "deleted", "kept, anonymised"
    rows: Callable[[ErasureSubject], QuerySet]
    scrub: Callable[[QuerySet, ErasureSubject], int]


def _of_supporter(model: type[Model], field: str = "supporter_id"):
    def rows(subject: ErasureSubject) -> QuerySet:
        if subject.supporter_id is None:
            return model.objects.none()
        return model.objects.filter(**{field: subject.supporter_id})

    return rows


def _delete(rows: QuerySet, subject: ErasureSubject) -> int:
    return rows.delete()[0]


def _blot_out(field: str):
    """Return a scrub that replaces the address inside `field`, keeping the rest of the text."""

    def scrub(rows: QuerySet, subject: ErasureSubject) -> int:
        changed = 0
        for row in rows.only("pk", field):
            setattr(row, field, subject.blot_out(getattr(row, field)))
            row.save(update_fields=[field])
            changed += 1
        return changed

    return scrub


def _with_json_text(rows: QuerySet, *fields: str) -> QuerySet:
    """Annotate JSON `fields` as text (`<field>_text`), so a search can look inside them."""
    return rows.annotate(**{f"{field}_text": Cast(field, TextField()) for field in fields})


def _delivery_rows(subject: ErasureSubject) -> QuerySet:
    # ESP message ids lead to the ESP's logs, which name the person; bounce errors often quote
    # the address. Status and timestamps stay: they are the mailing's anonymous counts.
    return _of_supporter(Delivery)(subject).filter(~Q(esp_message_id="") | ~Q(error=""))


def _tracking_event_rows(subject: ErasureSubject) -> QuerySet:
    # An ESP's payload holds the recipient's address; events for unknown messages (a test send,
    # a lost metadata) name it with no delivery at all.
    events = _with_json_text(TrackingEvent.objects.all(), "payload")
    by_address = Q(recipient__iexact=subject.email) | subject.names("description", "payload_text")
    if subject.supporter_id is not None:
        by_address |= Q(delivery__supporter_id=subject.supporter_id)
    return events.filter(by_address).exclude(
        recipient="", description="", message_id="", payload={}
    )


def _tracking_event_scrub(rows: QuerySet, subject: ErasureSubject) -> int:
    ids = list(rows.values_list("pk", flat=True))
    return TrackingEvent.objects.filter(pk__in=ids).update(
        recipient="", description="", message_id="", payload={}
    )


def _link_click_rows(subject: ErasureSubject) -> QuerySet:
    # A link may carry the address in its query string, put there by a merge field.
    return _of_supporter(LinkClick)(subject).filter(subject.names("url"))


def _outbox_rows(subject: ErasureSubject) -> QuerySet:
    # The development outbox: anything to the address, or quoting it (a test send rendered
    # as this supporter), is their mail.
    messages = _with_json_text(OutboxMessage.objects.all(), "headers")
    return messages.filter(subject.names("to", "text_body", "html_body", "headers_text"))


def _admin_log_rows(subject: ErasureSubject) -> QuerySet:
    # The admin's history names each object as str() gives it: a supporter, a signature, a
    # consent record, a delivery are all shown by the address.
    return LogEntry.objects.filter(subject.names("object_repr", "change_message"))


def _admin_log_scrub(rows: QuerySet, subject: ErasureSubject) -> int:
    changed = 0
    for entry in rows.only("pk", "object_repr", "change_message"):
        entry.object_repr = subject.blot_out(entry.object_repr)
        entry.change_message = subject.blot_out(entry.change_message)
        entry.save(update_fields=["object_repr", "change_message"])
        changed += 1
    return changed


def erased_email(supporter_id: int) -> str:
    """Return the placeholder an erased supporter's row keeps: unique, and nobody's address."""
    return f"erased-{supporter_id}@erased.invalid"


def _supporter_scrub(rows: QuerySet, subject: ErasureSubject) -> int:
    # The row stays, so signatures and deliveries still count; nothing in it names anyone.
    # Language and source (a petition slug, "import") stay too: they describe no one alone.
    return rows.update(
        email=erased_email(subject.supporter_id),
        first_name="",
        last_name="",
        country="",
        postcode="",
        status=Supporter.Status.ERASED,
        unsubscribed_at=None,
        suppressed_at=None,
        suppression_reason="",
        paused_until=None,
        updated_at=timezone.now(),
    )


SCRUBBERS: list[Scrubber] = [
    Scrubber(
        "Consent records", "deleted", _of_supporter(ConsentRecord), _delete
    ),
    Scrubber(
        "Tags", "removed from the supporter", _of_supporter(Supporter.tags.through), _delete
    ),
    Scrubber(
        # When they last opened, clicked, signed: a profile of a person's habits, and nothing
        # an anonymous count needs (the tiers leave out whoever is not mailable).
        "Engagement", "deleted", _of_supporter(Engagement), _delete
    ),
    Scrubber(
        "Signatures", "kept as counts (they hold nothing personal but the supporter)",
        _of_supporter(Signature), lambda rows, subject: 0,
    ),
    Scrubber(
        "Deliveries", "kept as counts; ESP message ids and error texts removed",
        _delivery_rows, lambda rows, subject: rows.update(esp_message_id="", error=""),
    ),
    Scrubber(
        "Tracking events", "kept as counts; address, ESP payload and description removed",
        _tracking_event_rows, _tracking_event_scrub,
    ),
    Scrubber(
        "Link clicks", "kept as counts; links quoting the address removed",
        _link_click_rows, lambda rows, subject: rows.update(url=""),
    ),
    Scrubber("Outbox messages", "deleted", _outbox_rows, _delete),
    Scrubber(
        "Mailing audit log", "the address taken out of its details",
        lambda subject: MailingAuditEntry.objects.filter(subject.names("detail")),
        _blot_out("detail"),
    ),
    Scrubber(
        "Supporter audit log", "the address taken out of its details",
        lambda subject: SupporterAuditEntry.objects.filter(subject.names("detail")),
        _blot_out("detail"),
    ),
    Scrubber(
        "Import reports", "rejected rows quoting the address deleted",
        lambda subject: SupporterImportRejection.objects.filter(subject.names("raw")),
        _delete,
    ),
    Scrubber(
        "Admin history", "the address taken out of its entries", _admin_log_rows, _admin_log_scrub
    ),
    # Last: the scrubbers above find rows by the supporter's id and by the address.
    Scrubber(
        "Supporter", "kept as an anonymous count: address, names, country, postcode removed",
        _of_supporter(Supporter, "pk"), _supporter_scrub,
    ),
]  # fmt: skip
