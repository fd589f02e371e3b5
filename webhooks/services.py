"""Writes of the webhooks app: subscribe, record events, attempt deliveries, retry, scrub.

An event becomes one WebhookEvent (its body, made once) and one WebhookDelivery per
subscription that hears it, written after the change that raised it has committed. Each
delivery is then one task on the `webhooks` queue: one POST, its outcome recorded, and, if a
retry can help, the next attempt scheduled with back-off until RALLY_WEBHOOK_RETRY_HOURS after
the event. The database holds the schedule: the sweep (beat) queues again whatever is due, so
retries survive a Redis that lost its queue and a worker that died mid-attempt.
"""

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import Mailing
from supporters.models import Supporter

from . import payloads, tasks
from .destinations import DestinationRefused
from .event_types import (
    MAILING_SENT,
    SIGNATURE_CREATED,
    SUPPORTER_ERASED,
)
from .models import WebhookDelivery, WebhookEvent, WebhookSubscription
from .signing import SIGNATURE_HEADER, signature_header_value
from .subscribers import subscribed_event_types_forget
from .transport import RESPONSE_KEPT_BYTES, webhook_post

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status

# The first retry comes after about this long; each later one waits twice as long as the one
# before, up to RETRY_CAP_SECONDS, each with jitter so that a receiver back from an outage is
# not met by every delivery it missed in the same second.
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 3600.0
# A retry due within this long is queued with a countdown at once; a later one is left to the
# sweep, so no worker holds hours of countdowns in memory.
COUNTDOWN_LIMIT_SECONDS = 300.0
USER_AGENT = "Rally-Webhooks/1.0"
_random = secrets.SystemRandom()


# --- Subscriptions -----------------------------------------------------------------------------


def webhook_subscription_create(
    *, url: str, events: list[str], secret: str, created_by=None
) -> WebhookSubscription:
    """Subscribe `url` to `events`; raise ValidationError for a bad URL, event or secret."""
    subscription = WebhookSubscription(
        url=url.strip(), events=list(events), secret=secret, created_by=created_by
    )
    return webhook_subscription_save(subscription=subscription)


def webhook_subscription_save(*, subscription: WebhookSubscription) -> WebhookSubscription:
    """Validate and save a subscription, new or changed; this process hears the change at once."""
    subscription.full_clean()
    subscription.save()
    subscribed_event_types_forget()
    return subscription


def webhook_subscription_delete(*, subscription: WebhookSubscription) -> None:
    subscription.delete()
    subscribed_event_types_forget()


# --- Events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSubject:
    """One event to record: its OSDI data, and whose personal data it may hold."""

    data: dict[str, Any]
    supporter_id: int | None = None


def webhook_events_record(*, event_type: str, subjects: Iterable[EventSubject]) -> list[int]:
    """Record one event per subject and a delivery of each to every subscription hearing it.

    Returns the deliveries' ids; each is queued once this transaction commits. Called after
    the change the events describe has committed (the receivers in receivers.py).
    """
    subscriptions = [
        subscription
        for subscription in WebhookSubscription.objects.filter(active=True)
        if event_type in subscription.events
    ]
    subjects = list(subjects)
    if not subscriptions or not subjects:
        return []
    now = timezone.now()
    with transaction.atomic():
        events = []
        for subject in subjects:
            event = WebhookEvent(type=event_type, created_at=now, supporter_id=subject.supporter_id)
            event.payload = payloads.event_body(
                event_id=event.event_id, event_type=event_type, created=now, data=subject.data
            )
            events.append(event)
        events = WebhookEvent.objects.bulk_create(events)
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event=event, subscription=subscription, next_attempt_at=now)
            for event in events
            for subscription in subscriptions
        )
        delivery_ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(partial(_queue_deliveries, delivery_ids))
    return delivery_ids


def _queue_deliveries(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        tasks.webhook_delivery_task.delay(delivery_id)


def webhook_signature_events_record(*, signature_ids: list[int]) -> list[int]:
    signatures = Signature.objects.filter(pk__in=signature_ids).select_related(
        "supporter", "petition"
    )
    return webhook_events_record(
        event_type=SIGNATURE_CREATED,
        subjects=[
            EventSubject(payloads.signature_data(signature), signature.supporter_id)
            for signature in signatures.order_by("pk")
        ],
    )


def webhook_supporter_events_record(*, event_type: str, supporter_ids: list[int]) -> list[int]:
    """Record one event of `event_type` per supporter, each with their OSDI person."""
    # Erased since: their erasure is the event, and it names nobody.
    supporters = (
        Supporter.objects.filter(pk__in=supporter_ids)
        .exclude(status=Supporter.Status.ERASED)
        .order_by("pk")
    )
    return webhook_events_record(
        event_type=event_type,
        subjects=[
            EventSubject(payloads.person_data(supporter), supporter.pk)
            for supporter in supporters.iterator(chunk_size=1000)
        ],
    )


def webhook_mailing_event_record(*, mailing_id: int) -> list[int]:
    mailing = Mailing.objects.filter(pk=mailing_id).first()
    if mailing is None:
        return []
    return webhook_events_record(
        event_type=MAILING_SENT, subjects=[EventSubject(payloads.message_data(mailing))]
    )


def webhook_erasure_event_data(*, supporter_id: int) -> dict[str, Any] | None:
    """Return what a supporter.erased event may say of a supporter: their identifiers alone.

    Read before the erasure scrubs the row, while it still describes them.
    """
    supporter = Supporter.objects.filter(pk=supporter_id).first()
    if supporter is None:
        return None
    return payloads.identifiers_only(payloads.person_data(supporter))


def webhook_erasure_event_record(*, supporter_id: int, data: dict[str, Any]) -> list[int]:
    return webhook_events_record(
        event_type=SUPPORTER_ERASED, subjects=[EventSubject(data, supporter_id)]
    )


def webhook_events_scrub_person(*, supporter_id: int) -> int:
    """Take an erased supporter's personal data out of every stored event about them.

    Each body keeps its id, type and time, and its data only the identifiers, so a delivery
    still pending sends nothing personal; a receiver's answers to those events, which may
    quote what they were sent, are blanked. Returns how many events were scrubbed. Runs in
    the erasure's transaction.
    """
    events = list(WebhookEvent.objects.filter(supporter_id=supporter_id).only("pk", "payload"))
    for event in events:
        event.payload = {**event.payload, "data": payloads.identifiers_only(event.payload["data"])}
    WebhookEvent.objects.bulk_update(events, ["payload"])
    WebhookDelivery.objects.filter(event__supporter_id=supporter_id).exclude(
        response_body=""
    ).update(response_body="")
    return len(events)


# --- Deliveries --------------------------------------------------------------------------------


def _lock_seconds() -> float:
    """How long an attempt may take at most: the task's hard time limit, and a margin."""
    return tasks.delivery_time_limit_seconds() + 30.0


def retry_delay_seconds(attempts: int) -> float:
    """Return the wait before the next attempt after `attempts` failed ones (with jitter)."""
    ceiling = min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_CAP_SECONDS)
    return ceiling / 2 + _random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt came to: the delivery's status after it, and when it goes again."""

    status: str
    response_status: int | None
    detail: str
    retry_in_seconds: float | None = None


def webhook_delivery_attempt(*, delivery_id: int) -> AttemptOutcome | None:
    """Make one attempt at a due delivery, and record it; None when it was not ours to make.

    The delivery is claimed by a conditional UPDATE first: one that is settled, not due, or
    being attempted by another worker is left alone, so a task queued twice (the sweep's and a
    countdown's) posts once.
    """
    now = timezone.now()
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=Status.PENDING)
        .filter(next_attempt_at__lte=now)
        .filter(free)
        .update(
            locked_until=now + timedelta(seconds=_lock_seconds()),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("event", "subscription").get(pk=delivery_id)
    outcome = _post(delivery)
    _record(delivery, outcome)
    return outcome


def _post(delivery: WebhookDelivery) -> AttemptOutcome:
    subscription, event = delivery.subscription, delivery.event
    if not subscription.active:
        return AttemptOutcome(Status.FAILED, None, "The subscription was deactivated.")
    body = payloads.body_bytes(event.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # The same on every attempt at this event, so a receiver can drop a second copy.
        "Idempotency-Key": str(event.event_id),
        "Rally-Event-Id": str(event.event_id),
        "Rally-Event-Type": event.type,
        SIGNATURE_HEADER: signature_header_value(secret=subscription.secret, body=body),
    }
    timeout = settings.RALLY_WEBHOOK_TIMEOUT_SECONDS
    try:
        answer = webhook_post(url=subscription.url, body=body, headers=headers, timeout=timeout)
    except DestinationRefused as error:
        # Permanent: the URL's host now resolves inside our network.
        return AttemptOutcome(Status.FAILED, None, str(error))
    except requests.Timeout:
        return _transient(delivery, None, f"No answer within {timeout:g} seconds.")
    except requests.RequestException as error:
        return _transient(delivery, None, f"Could not connect: {error}")
    if 200 <= answer.status_code < 300:
        return AttemptOutcome(Status.SUCCEEDED, answer.status_code, answer.body)
    if answer.status_code == 429 or answer.status_code >= 500:
        return _transient(
            delivery, answer.status_code, answer.body, asked_to_wait=answer.retry_after
        )
    # A refusal a retry cannot change; a redirect is not followed (it could lead anywhere).
    return AttemptOutcome(Status.FAILED, answer.status_code, answer.body)


def _transient(
    delivery: WebhookDelivery,
    response_status: int | None,
    detail: str,
    *,
    asked_to_wait: float | None = None,
):
    """Return a retry's outcome, or a give-up's once the next try would fall past the window.

    A receiver's Retry-After is honoured when it asks for longer than the back-off would
    wait, up to RETRY_CAP_SECONDS.
    """
    delay = retry_delay_seconds(delivery.attempts)
    if asked_to_wait is not None:
        delay = max(delay, min(asked_to_wait, RETRY_CAP_SECONDS))
    deadline = delivery.event.created_at + timedelta(hours=settings.RALLY_WEBHOOK_RETRY_HOURS)
    if timezone.now() + timedelta(seconds=delay) > deadline:
        return AttemptOutcome(Status.GIVEN_UP, response_status, detail)
    return AttemptOutcome(Status.PENDING, response_status, detail, retry_in_seconds=delay)


def _record(delivery: WebhookDelivery, outcome: AttemptOutcome) -> None:
    now = timezone.now()
    retry_at: datetime | None = None
    if outcome.retry_in_seconds is not None:
        retry_at = now + timedelta(seconds=outcome.retry_in_seconds)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=outcome.status,
        response_status=outcome.response_status,
        response_body=outcome.detail[:RESPONSE_KEPT_BYTES],
        next_attempt_at=retry_at,
        locked_until=None,
        finished_at=None if outcome.status == Status.PENDING else now,
    )
    log = logger.info if outcome.status == Status.SUCCEEDED else logger.warning
    log(
        "Webhook delivery %s of event %s to subscription %s: %s (HTTP %s), attempt %s",
        delivery.pk, delivery.event.event_id, delivery.subscription_id, outcome.status,
        outcome.response_status, delivery.attempts,
    )  # fmt: skip
    if outcome.retry_in_seconds is not None and outcome.retry_in_seconds <= COUNTDOWN_LIMIT_SECONDS:
        tasks.webhook_delivery_task.apply_async((delivery.pk,), countdown=outcome.retry_in_seconds)


def webhook_deliveries_queue_due(*, limit: int = 1000) -> int:
    """Queue a task for each pending delivery whose attempt is due and that nobody holds.

    Run by beat every RALLY_SWEEP_SECONDS: it finds retries left to it, tasks a Redis restart
    lost, and attempts a dead worker left locked. A delivery queued twice is attempted once
    (webhook_delivery_attempt claims it). Returns how many it queued.
    """
    now = timezone.now()
    due = (
        WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    delivery_ids = list(due)
    _queue_deliveries(delivery_ids)
    return len(delivery_ids)


def webhook_delivery_retry(*, delivery_ids: Iterable[int]) -> int:
    """Make deliveries due again now (an administrator's retry); return how many.

    A settled delivery (succeeded, failed or given up) gets one more attempt; if that one
    fails in a way a retry could help after the event's window has closed, it is given up
    again rather than retried for another day.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.filter(pk__in=list(delivery_ids))
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .values_list("pk", flat=True)
        )
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=Status.PENDING, next_attempt_at=now, locked_until=None, finished_at=None
        )
        transaction.on_commit(partial(_queue_deliveries, ids))
    return len(ids)
