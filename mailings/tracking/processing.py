"""Apply a stored ESP event: to its Delivery, to its supporter, and to the breaker.

Runs on the `tracking` queue (mailings.tasks.tracking_event_process_task), once per event:
the event is claimed by a conditional UPDATE of `processed_at` inside the transaction that
applies it, so two workers given the same event (a re-queue by the sweep, a redelivered task)
never both apply it, and a worker that dies half-way leaves it unprocessed for the sweep.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailings import tasks
from mailings.models import Delivery, TrackingEvent
from mailings.services.esp_breaker import mailing_check_esp_feedback
from supporters.models import Supporter
from supporters.services import supporter_suppress

from .kinds import NOTHING, Effect, event_effect

logger = logging.getLogger(__name__)

# Delivery.esp_status by precedence: a later, weaker event never replaces a stronger one (a
# "delivered" that arrives after the complaint does not hide the complaint).
ESP_STATUS_RANK = {
    "": 0,
    Delivery.EspStatus.DELIVERED: 1,
    Delivery.EspStatus.SOFT_BOUNCED: 2,
    Delivery.EspStatus.REJECTED: 3,
    Delivery.EspStatus.BOUNCED: 4,
    Delivery.EspStatus.COMPLAINED: 5,
}
# What the breaker counts (mailings/services/esp_breaker.py).
BREAKER_STATUSES = (Delivery.EspStatus.BOUNCED, Delivery.EspStatus.COMPLAINED)
# Events unprocessed this long had their task lost (Redis forgets); the sweep queues them again.
SWEEP_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 1000


def tracking_event_process(*, event_pk: int) -> str:
    """Apply one stored event once; return its outcome (TrackingEvent.Outcome), "" if taken.

    An event already processed, or being processed by another worker, is left alone.
    """
    check_breaker_of = None
    with transaction.atomic():
        now = timezone.now()
        claimed = TrackingEvent.objects.filter(pk=event_pk, processed_at__isnull=True).update(
            processed_at=now
        )
        if not claimed:
            return ""
        event = TrackingEvent.objects.get(pk=event_pk)
        delivery = _matching_delivery(event)
        if delivery is None:
            outcome = TrackingEvent.Outcome.UNKNOWN_MESSAGE
            logger.info(
                "%s %s event for a message Rally does not know (message id %r)",
                event.esp,
                event.event_type,
                event.message_id,
            )
            event_update = {"outcome": outcome}
        elif delivery.supporter.status == Supporter.Status.ERASED:
            # The supporter asked to be forgotten: keep nothing of their address here either.
            outcome = TrackingEvent.Outcome.IGNORED
            event_update = {
                "outcome": outcome,
                "delivery": delivery,
                "recipient": "",
                "description": "",
                "payload": {},
            }
        else:
            effect = event_effect(
                esp=event.esp,
                event_type=event.event_type,
                reject_reason=event.reject_reason,
                payload=event.payload,
            )
            changed_status = _apply(event, delivery, effect)
            if changed_status in BREAKER_STATUSES:
                check_breaker_of = delivery.mailing_id
            outcome = (
                TrackingEvent.Outcome.IGNORED
                if effect == NOTHING
                else TrackingEvent.Outcome.APPLIED
            )
            event_update = {"outcome": outcome, "delivery": delivery}
        for name, value in event_update.items():
            setattr(event, name, value)
        event.save(update_fields=list(event_update))
    if check_breaker_of is not None:
        mailing_check_esp_feedback(mailing_id=check_breaker_of)
    return outcome


def tracking_event_sweep() -> int:
    """Queue again the events whose task was lost (unprocessed for over a minute). By beat.

    Return how many were queued. A duplicate task is harmless: processing claims the event.
    """
    stale = list(
        TrackingEvent.objects.filter(
            processed_at__isnull=True, created_at__lt=timezone.now() - SWEEP_AFTER
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for event_pk in stale:
        tasks.tracking_event_process_task.delay(event_pk)
    if stale:
        logger.warning("Queued %s tracking events again, whose tasks were lost", len(stale))
    return len(stale)


def _matching_delivery(event: TrackingEvent) -> Delivery | None:
    """Return the Delivery the event is about: by our metadata, else by the ESP's message id.

    The metadata must agree with itself and with the recipient the ESP names, so a forged or
    mistyped delivery id cannot act on somebody else's row.
    """
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    delivery_id, mailing_id = metadata.get("delivery_id"), metadata.get("mailing_id")
    if _is_id(delivery_id) and _is_id(mailing_id):
        delivery = (
            Delivery.objects.select_related("supporter")
            .filter(pk=int(delivery_id), mailing_id=int(mailing_id))
            .first()
        )
        if delivery is not None and _recipient_matches(event, delivery):
            return delivery
    if event.message_id:
        candidates = Delivery.objects.select_related("supporter").filter(
            esp_message_id=event.message_id
        )[:2]
        for delivery in candidates:
            if _recipient_matches(event, delivery):
                return delivery
    return None


def _apply(event: TrackingEvent, delivery: Delivery, effect: Effect) -> str:
    """Apply the effect; return the esp_status it set on the delivery, or "" if none."""
    changed_status = ""
    if effect.esp_status:
        weaker = [
            status
            for status, rank in ESP_STATUS_RANK.items()
            if rank < ESP_STATUS_RANK[effect.esp_status]
        ]
        if Delivery.objects.filter(pk=delivery.pk, esp_status__in=weaker).update(
            esp_status=effect.esp_status, esp_status_at=event.occurred_at, updated_at=timezone.now()
        ):
            changed_status = effect.esp_status
    if effect.opened:
        Delivery.objects.filter(pk=delivery.pk, opened_at__isnull=True).update(
            opened_at=event.occurred_at
        )
    if effect.clicked:
        Delivery.objects.filter(pk=delivery.pk, clicked_at__isnull=True).update(
            clicked_at=event.occurred_at
        )
    reason = _suppression_reason(event)
    if effect.suppress_as:
        supporter_suppress(
            supporter_id=delivery.supporter_id, status=effect.suppress_as, reason=reason
        )
    elif effect.soft_bounce and _soft_bounce_limit_reached(delivery.supporter_id):
        supporter_suppress(
            supporter_id=delivery.supporter_id,
            status=Supporter.Status.BOUNCED,
            reason=f"{settings.RALLY_SOFT_BOUNCE_LIMIT} soft bounces within "
            f"{settings.RALLY_SOFT_BOUNCE_WINDOW_DAYS} days; the last: {reason}",
        )
    return changed_status


def _soft_bounce_limit_reached(supporter_id: int) -> bool:
    """Count the supporter's soft-bounced messages within the window (each message once).

    The supporter's row is locked first, so two soft bounces processed at once both count.
    """
    list(Supporter.objects.select_for_update().filter(pk=supporter_id).values_list("pk"))
    since = timezone.now() - timedelta(days=settings.RALLY_SOFT_BOUNCE_WINDOW_DAYS)
    bounced = Delivery.objects.filter(
        supporter_id=supporter_id,
        esp_status=Delivery.EspStatus.SOFT_BOUNCED,
        esp_status_at__gte=since,
    ).count()
    return bounced >= settings.RALLY_SOFT_BOUNCE_LIMIT


def _suppression_reason(event: TrackingEvent) -> str:
    words = f"{event.esp} {event.event_type}"
    if event.reject_reason:
        words += f" ({event.reject_reason})"
    if event.description:
        words += f": {event.description}"
    return words[:500]


def _recipient_matches(event: TrackingEvent, delivery: Delivery) -> bool:
    if delivery.supporter.status == Supporter.Status.ERASED:
        return True
    return not event.recipient or event.recipient.lower() == delivery.supporter.email.lower()


def _is_id(value) -> bool:
    return isinstance(value, int | str) and str(value).isdigit() and len(str(value)) < 19
