"""Apply stored ESP events: to their Deliveries, to their supporters, and to the breaker.

Runs on the `tracking` queue (feedback/tasks.py, tracking_events_process_task), a batch of
events at a time, once per event: the batch's events are claimed (locked, skipping those another
worker holds, and marked by `processed_at`) inside the one transaction that applies them, so
two workers given the same event (a re-queue by the sweep, a redelivered task) never both
apply it, and a worker that dies half-way leaves them unprocessed for the sweep. What the
events need is read set-based (their deliveries and supporters in a query or two), and each
Delivery column is updated by one conditional UPDATE per batch, so a batch costs about as
many statements as one event did.
"""

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Case, DateTimeField, Value, When
from django.utils import timezone

from mailings.feedback import tasks
from mailings.feedback.kinds import NOTHING, Effect, event_effect
from mailings.models import Delivery, TrackingEvent
from mailings.report_counts import DeliveryChanges, DeliveryState
from mailings.sending.breaker import mailing_check_esp_feedback
from supporters.engagement_records import Engaged, engagement_record_engaged
from supporters.models import Supporter
from supporters.services import supporter_suppress

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
# Events unprocessed this long had their task lost (Redis forgets); the sweep queues them again.
SWEEP_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 1000
# Event ids per task the sweep queues.
SWEEP_EVENTS_PER_TASK = 200


def tracking_event_process(*, event_pk: int) -> str:
    """Apply one stored event once; return its outcome (TrackingEvent.Outcome), "" if taken.

    An event already processed, or being processed by another worker, is left alone.
    """
    return tracking_events_process(event_pks=[event_pk]).get(event_pk, "")


def tracking_events_process(*, event_pks: Sequence[int]) -> dict[int, str]:
    """Apply stored events once each, in one transaction; return {event id: outcome}.

    Only the events this call claimed are in the result: one already processed, or being
    processed by another worker, is left alone. Applying a batch leaves what applying its
    events one after another in id order would leave.
    """
    with transaction.atomic():
        events = _claim(event_pks)
        if not events:
            return {}
        now = timezone.now()
        deliveries = _matching_deliveries(events)
        applied: list[tuple[TrackingEvent, Delivery, Effect]] = []
        erased: list[TrackingEvent] = []
        for event in events:
            event.processed_at = now
            delivery = deliveries.get(event.pk)
            if delivery is None:
                event.outcome = TrackingEvent.Outcome.UNKNOWN_MESSAGE
                logger.info(
                    "%s %s event for a message Rally does not know (message id %r)",
                    event.esp,
                    event.event_type,
                    event.message_id,
                    extra={"tracking_event_id": event.pk},
                )
                continue
            event.delivery = delivery
            if delivery.supporter.status == Supporter.Status.ERASED:
                # The supporter asked to be forgotten: keep nothing of their address here either.
                event.outcome = TrackingEvent.Outcome.IGNORED
                event.recipient, event.description, event.payload = "", "", {}
                erased.append(event)
                continue
            effect = event_effect(
                esp=event.esp,
                event_type=event.event_type,
                reject_reason=event.reject_reason,
                payload=event.payload,
            )
            outcome = TrackingEvent.Outcome
            event.outcome = outcome.IGNORED if effect == NOTHING else outcome.APPLIED
            applied.append((event, delivery, effect))
        # The report counts what the batch changes in its deliveries, read locked above.
        report_changes = DeliveryChanges.read_locked(
            delivery
            for _, delivery, effect in applied
            if effect.esp_status or effect.opened or effect.clicked
        )
        check_breaker_of = _apply(applied, now=now)
        erased_pks = {event.pk for event in erased}
        kept = [event for event in events if event.pk not in erased_pks]
        TrackingEvent.objects.bulk_update(kept, ["processed_at", "outcome", "delivery"])
        if erased:
            TrackingEvent.objects.bulk_update(
                erased,
                ["processed_at", "outcome", "delivery", "recipient", "description", "payload"],
            )
        report_changes.count(after=_deliveries_after(applied, report_changes.before))
    for mailing_id in sorted(check_breaker_of):
        with structlog.contextvars.bound_contextvars(mailing_id=mailing_id):
            mailing_check_esp_feedback(mailing_id=mailing_id)
    return {event.pk: event.outcome for event in events}


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
    for start in range(0, len(stale), SWEEP_EVENTS_PER_TASK):
        tasks.tracking_events_process_task.delay(stale[start : start + SWEEP_EVENTS_PER_TASK])
    if stale:
        logger.warning("Queued %s tracking events again, whose tasks were lost", len(stale))
    return len(stale)


def _claim(event_pks: Sequence[int]) -> list[TrackingEvent]:
    """Lock the unprocessed events among event_pks, in id order; skip those locked elsewhere.

    Their processed_at is set when the batch is written, in the same transaction. (SQLite has
    no row locks: its transactions take the write lock at BEGIN, which serialises workers.)
    """
    return list(
        TrackingEvent.objects.select_for_update(skip_locked=True)
        .filter(pk__in=list(event_pks), processed_at__isnull=True)
        .order_by("pk")
    )


def _matching_deliveries(events: list[TrackingEvent]) -> dict[int, Delivery]:
    """Return {event id: the Delivery it is about}: by our metadata, else by the message id.

    The metadata must agree with itself and with the recipient the ESP names, so a forged or
    mistyped delivery id cannot act on somebody else's row. A query for the metadata's
    deliveries, and one for the message ids of the events that did not match by metadata.
    Both lock the rows they read, in id order, until the batch commits: the report counts
    what the batch changes from the rows as read here (mailings/report_counts.py).
    """
    wanted: dict[int, tuple[int, int]] = {}
    for event in events:
        metadata = event.metadata if isinstance(event.metadata, dict) else {}
        delivery_id, mailing_id = metadata.get("delivery_id"), metadata.get("mailing_id")
        if _is_id(delivery_id) and _is_id(mailing_id):
            wanted[event.pk] = (int(delivery_id), int(mailing_id))
    locked = Delivery.objects.select_related("supporter").select_for_update(of=("self",))
    by_pk = locked.order_by("pk").in_bulk({delivery_id for delivery_id, _ in wanted.values()})
    matched: dict[int, Delivery] = {}
    for event in events:
        delivery_id, mailing_id = wanted.get(event.pk, (None, None))
        delivery = by_pk.get(delivery_id)
        if delivery and delivery.mailing_id == mailing_id and _recipient_matches(event, delivery):
            matched[event.pk] = delivery
    by_message_id: dict[str, list[Delivery]] = {}
    message_ids = {e.message_id for e in events if e.pk not in matched and e.message_id}
    if message_ids:
        candidates = locked.filter(esp_message_id__in=message_ids)
        for delivery in candidates.order_by("pk"):
            by_message_id.setdefault(delivery.esp_message_id, []).append(delivery)
    for event in events:
        if event.pk in matched or not event.message_id:
            continue
        for delivery in by_message_id.get(event.message_id, [])[:2]:
            if _recipient_matches(event, delivery):
                matched[event.pk] = delivery
                break
    return matched


def _apply(applied: list[tuple[TrackingEvent, Delivery, Effect]], *, now: datetime) -> set[int]:
    """Apply the effects to deliveries and supporters; return the mailings the breaker checks.

    Per delivery, the strongest status among its events wins (the first such event's time),
    if stronger than its own; first opens and clicks are kept. Statuses are written strongest
    first, so a weaker one of the same batch finds the stronger in place, as it would one
    after another. The breaker checks the mailings where a bounce or complaint changed a status.
    """
    by_status: dict[str, dict[int, datetime]] = {}
    opened: dict[int, datetime] = {}
    clicked: dict[int, datetime] = {}
    mailing_of: dict[int, int] = {}
    for event, delivery, effect in applied:
        mailing_of[delivery.pk] = delivery.mailing_id
        if effect.esp_status:
            by_status.setdefault(effect.esp_status, {}).setdefault(delivery.pk, event.occurred_at)
        if effect.opened:
            opened.setdefault(delivery.pk, event.occurred_at)
        if effect.clicked:
            clicked.setdefault(delivery.pk, event.occurred_at)
    check_breaker_of: set[int] = set()
    for status in sorted(by_status, key=ESP_STATUS_RANK.__getitem__, reverse=True):
        times = by_status[status]
        rank = ESP_STATUS_RANK[status]
        weaker = [other for other, other_rank in ESP_STATUS_RANK.items() if other_rank < rank]
        changed = Delivery.objects.filter(pk__in=list(times), esp_status__in=weaker).update(
            esp_status=status, esp_status_at=_per_delivery(times), updated_at=now
        )
        if changed and status in Delivery.HARD_ESP_STATUSES:
            check_breaker_of.update(mailing_of[pk] for pk in times)
    if opened:
        Delivery.objects.filter(pk__in=list(opened), opened_at__isnull=True).update(
            opened_at=_per_delivery(opened)
        )
    if clicked:
        Delivery.objects.filter(pk__in=list(clicked), clicked_at__isnull=True).update(
            clicked_at=_per_delivery(clicked)
        )
    _record_engagement(applied, opened=opened, clicked=clicked)
    for event, delivery, effect in applied:
        _apply_to_supporter(event, delivery, effect)
    return check_breaker_of


def _record_engagement(
    applied: list[tuple[TrackingEvent, Delivery, Effect]],
    *,
    opened: dict[int, datetime],
    clicked: dict[int, datetime],
) -> None:
    """Record the batch's opens and clicks in their supporters' Engagement rows.

    A statement for the opens and one for the clicks, whichever the batch has. An event counts
    even when its delivery had been opened or clicked before: an open weeks later is
    engagement too.
    """
    supporter_of = {delivery.pk: delivery.supporter_id for _, delivery, _ in applied}
    for engaged, times in ((Engaged.OPENED, opened), (Engaged.CLICKED, clicked)):
        if times:
            engagement_record_engaged(
                engaged=engaged,
                times=[(supporter_of[pk], at) for pk, at in times.items()],
            )


def _deliveries_after(
    applied: list[tuple[TrackingEvent, Delivery, Effect]], before: dict[int, DeliveryState]
) -> dict[int, DeliveryState]:
    """Return what _apply leaves of each delivery in `before` (its rows as read, locked).

    The same rule as _apply's, one event after another in id order: a status stronger than the
    delivery's own replaces it with the event's time, and the first open and click are kept.
    For the report, which counts the difference without reading the rows again (a query a
    batch); tests/mailings/reports/test_buckets.py holds its counts to the ledger's.
    """
    after = dict(before)
    for event, delivery, effect in applied:
        state = after.get(delivery.pk)
        if state is None:
            continue
        changes: dict = {}
        if effect.esp_status and (
            ESP_STATUS_RANK[effect.esp_status] > ESP_STATUS_RANK.get(state.esp_status, 0)
        ):
            changes.update(esp_status=effect.esp_status, esp_status_at=event.occurred_at)
        if effect.opened and state.opened_at is None:
            changes["opened_at"] = event.occurred_at
        if effect.clicked and state.clicked_at is None:
            changes["clicked_at"] = event.occurred_at
        if changes:
            after[delivery.pk] = dataclasses.replace(state, **changes)
    return after


def _per_delivery(times: dict[int, datetime]):
    """Return the value for a column set to each delivery's own time (by primary key)."""
    distinct = set(times.values())
    if len(distinct) == 1:
        return Value(distinct.pop(), output_field=DateTimeField())
    return Case(
        *(When(pk=pk, then=Value(at)) for pk, at in times.items()),
        output_field=DateTimeField(),
    )


def _apply_to_supporter(event: TrackingEvent, delivery: Delivery, effect: Effect) -> None:
    reason = _suppression_reason(event)
    if effect.suppress_as:
        status = effect.suppress_as
    elif effect.soft_bounce and _soft_bounce_limit_reached(delivery.supporter_id):
        status = Supporter.Status.BOUNCED
        reason = (
            f"{settings.RALLY_SOFT_BOUNCE_LIMIT} soft bounces within "
            f"{settings.RALLY_SOFT_BOUNCE_WINDOW_DAYS} days; the last: {reason}"
        )
    else:
        return
    supporter_suppress(supporter_id=delivery.supporter_id, status=status, reason=reason)
    with structlog.contextvars.bound_contextvars(
        mailing_id=delivery.mailing_id,
        delivery_id=delivery.pk,
        supporter_id=delivery.supporter_id,
        tracking_event_id=event.pk,
    ):
        # Not the reason: the ESP's description often quotes the address.
        logger.info(
            "Supporter suppressed (%s) after a %s %s event", status, event.esp, event.event_type
        )


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
