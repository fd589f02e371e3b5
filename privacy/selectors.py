"""Reads about one person across every app: their data as a whole, and what erasure would do."""

import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import Delivery, LinkClick, TrackingEvent
from supporters.models import Supporter

from .scrubbers import SCRUBBERS, ErasureSubject


def supporter_by_email(email: str) -> Supporter | None:
    """Return the supporter with this address (any case, spaces trimmed), or None."""
    return Supporter.objects.filter(email=email.strip().lower()).first()


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def supporter_personal_data(*, supporter: Supporter) -> dict[str, Any]:
    """Return everything Rally holds about one supporter, as JSON-serialisable data.

    The answer to a subject access request (GDPR art. 15) and the portable copy of art. 20:
    their profile, tags, consents, signatures, the mailings sent to them and what the ESP and
    the click redirect recorded of each. Times are ISO 8601 in UTC.
    """
    profile = {
        "id": supporter.pk,
        "email": supporter.email,
        "first_name": supporter.first_name,
        "last_name": supporter.last_name,
        "country": str(supporter.country or ""),
        "postcode": supporter.postcode,
        "language": supporter.language,
        "status": supporter.status,
        "source": supporter.source,
        "created_at": _iso(supporter.created_at),
        "updated_at": _iso(supporter.updated_at),
        "unsubscribed_at": _iso(supporter.unsubscribed_at),
        "suppressed_at": _iso(supporter.suppressed_at),
        "suppression_reason": supporter.suppression_reason,
        "paused_until": _iso(supporter.paused_until),
    }
    consents = [
        {
            "wording": record.wording,
            "source_url": record.source_url,
            "ip_truncated": record.ip_truncated,
            "given_at": _iso(record.created_at),
        }
        for record in supporter.consent_records.order_by("created_at", "pk")
    ]
    signatures = [
        {
            "petition": signature.petition.title,
            "petition_slug": signature.petition.slug,
            "signed_at": _iso(signature.created_at),
            "confirmed_at": _iso(signature.confirmed_at),
            "consented": signature.consented,
            "source": signature.source,
            "mailing_credited": signature.mailing.name if signature.mailing else None,
        }
        for signature in Signature.objects.filter(supporter=supporter)
        .select_related("petition", "mailing")
        .order_by("created_at", "pk")
    ]
    deliveries = [
        {
            "mailing": delivery.mailing.name,
            "status": delivery.status,
            "sent_at": _iso(delivery.sent_at),
            "esp_status": delivery.esp_status,
            "esp_status_at": _iso(delivery.esp_status_at),
            "opened_at": _iso(delivery.opened_at),
            "clicked_at": _iso(delivery.clicked_at),
            "error": delivery.error,
        }
        for delivery in Delivery.objects.filter(supporter=supporter)
        .select_related("mailing")
        .order_by("created_at", "pk")
    ]
    # Events the ESP sent about them: those of their deliveries, and those that name their
    # address without matching a delivery.
    events = [
        {
            "type": event.event_type,
            "occurred_at": _iso(event.occurred_at),
            "description": event.description,
            "reject_reason": event.reject_reason,
            "esp": event.esp,
            "mailing": event.delivery.mailing.name if event.delivery else None,
        }
        for event in TrackingEvent.objects.filter(
            Q(delivery__supporter=supporter) | Q(recipient__iexact=supporter.email)
        )
        .select_related("delivery__mailing")
        .order_by("occurred_at", "pk")
    ]
    clicks = [
        {"mailing": click.mailing.name, "url": click.url, "clicked_at": _iso(click.created_at)}
        for click in LinkClick.objects.filter(supporter=supporter)
        .select_related("mailing")
        .order_by("created_at", "pk")
    ]
    return {
        "exported_at": _iso(timezone.now()),
        "profile": profile,
        "tags": sorted(supporter.tags.values_list("name", flat=True)),
        "consents": consents,
        "signatures": signatures,
        "deliveries": deliveries,
        "tracking_events": events,
        "clicks": clicks,
    }


def supporter_erasure_plan(*, supporter: Supporter) -> list[tuple[str, str, int]]:
    """Return what erasing the supporter would do: (table, effect, rows) for each table hit."""
    subject = ErasureSubject(supporter_id=supporter.pk, email=supporter.email)
    plan = []
    for scrubber in SCRUBBERS:
        count = scrubber.rows(subject).count()
        if count:
            plan.append((scrubber.label, scrubber.effect, count))
    return plan
