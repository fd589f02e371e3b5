"""Everything that can happen to a mailing and its deliveries: send, claim, record, finish.

How a send runs (DESIGN.md, flow 3):
1. `mailing_send` marks the mailing SENDING and queues the audience snapshot.
2. `delivery_snapshot` freezes the audience into one PENDING Delivery per supporter.
3. `mailing_send_batch` — run by up to RALLY_SEND_PARALLELISM task chains at once — claims a
   batch under a lease, renders and sends it over one connection, and records every outcome.
4. `mailing_finish_if_done` marks the mailing SENT once nothing is pending or claimed.
5. `mailing_sweep` (beat) recovers what crashed workers and a forgetful Redis leave behind.

Crash policy. A claimed Delivery whose lease expired belonged to a worker that died between
claiming and recording. The ESP may have accepted some of its messages, and no ESP we send to
takes an idempotency key, so re-sending could mail someone twice: such rows become UNKNOWN and
are reported, never re-sent. Outcomes are recorded per batch, so at most one batch per dead
worker ends up UNKNOWN.
"""

import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from mailings import tasks
from supporters.models import Supporter

from .models import Delivery, Mailing
from .rendering import build_message, compiled_mailing, merge_fields
from .selectors import mailing_audience
from .send_errors import classify_send_error

logger = logging.getLogger(__name__)

SNAPSHOT_CHUNK_SIZE = 5000
# Back-off after a transient ESP failure: base * 2**attempt seconds, capped, with full jitter.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


class MailingStateError(Exception):
    """The mailing is not in a status that allows what was asked."""


def mailing_send(*, mailing: Mailing) -> None:
    """Start sending a draft or scheduled mailing now.

    Safe to call twice: the conditional UPDATE lets only the first call through.
    """
    now = timezone.now()
    started = Mailing.objects.filter(
        pk=mailing.pk, status__in=[Mailing.Status.DRAFT, Mailing.Status.SCHEDULED]
    ).update(status=Mailing.Status.SENDING, started_at=now, status_reason="", updated_at=now)
    if not started:
        mailing.refresh_from_db(fields=["status"])
        raise MailingStateError(
            f"“{mailing}” is {mailing.get_status_display().lower()}; "
            "only a draft or scheduled mailing can be sent."
        )
    mailing.status = Mailing.Status.SENDING
    tasks.mailing_snapshot_task.delay_on_commit(mailing.pk)


def delivery_snapshot(*, mailing_id: int) -> int:
    """Freeze a mailing's audience into PENDING Delivery rows; return how many are pending.

    Set-based and idempotent: the unique (mailing, supporter) constraint makes a second snapshot
    insert nothing, so a redelivered task is harmless.
    """
    mailing = Mailing.objects.get(pk=mailing_id)
    now = timezone.now()
    audience_ids = mailing_audience(mailing).values("pk")
    if db_connection.vendor == "postgresql":
        audience_sql, audience_params = audience_ids.query.sql_with_params()
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Delivery._meta.db_table}
                    (mailing_id, supporter_id, status, claimed_by, esp_message_id, error,
                     created_at, updated_at)
                SELECT %s, audience.id, %s, '', '', '', %s, %s FROM ({audience_sql}) AS audience
                ON CONFLICT DO NOTHING
                """,  # noqa: S608 -- the only interpolations are the ORM's own SQL and table name
                [mailing_id, Delivery.Status.PENDING, now, now, *audience_params],
            )
    else:
        chunk: list[Delivery] = []
        for supporter_id in audience_ids.values_list("pk", flat=True).iterator(
            chunk_size=SNAPSHOT_CHUNK_SIZE
        ):
            chunk.append(Delivery(mailing_id=mailing_id, supporter_id=supporter_id))
            if len(chunk) == SNAPSHOT_CHUNK_SIZE:
                Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
                chunk = []
        Delivery.objects.bulk_create(chunk, ignore_conflicts=True)
    Mailing.objects.filter(pk=mailing_id, audience_snapshot_at__isnull=True).update(
        audience_snapshot_at=timezone.now()
    )
    return Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING).count()


def mailing_snapshot_and_start(*, mailing_id: int) -> None:
    """Take the audience snapshot of a sending mailing, then start its batch chains."""
    if not Mailing.objects.filter(pk=mailing_id, status=Mailing.Status.SENDING).exists():
        return
    pending = delivery_snapshot(mailing_id=mailing_id)
    if pending:
        mailing_start_batches(mailing_id=mailing_id)
    else:
        mailing_finish_if_done(mailing_id=mailing_id)


def mailing_start_batches(*, mailing_id: int) -> None:
    """Queue the batch task chains of a mailing; extra chains find nothing to claim and stop."""
    for _ in range(settings.RALLY_SEND_PARALLELISM):
        tasks.mailing_send_batch_task.delay(mailing_id)


@dataclass
class ClaimedDelivery:
    delivery_id: int
    supporter_id: int
    email: str
    first_name: str
    last_name: str
    country: str
    supporter_status: str


def delivery_claim_batch(*, mailing_id: int, worker: str, size: int) -> list[ClaimedDelivery]:
    """Claim up to `size` pending deliveries of a mailing for one worker, under a lease.

    Concurrent workers never claim the same row: on PostgreSQL locked rows are skipped
    (SKIP LOCKED); on SQLite the transaction holds the database's single write lock.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return []
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.CLAIMED,
            claimed_by=worker,
            lease_expires_at=now + timedelta(seconds=settings.RALLY_SEND_LEASE_SECONDS),
            updated_at=now,
        )
        Mailing.objects.filter(pk=mailing_id).update(heartbeat_at=now)
    rows = Delivery.objects.filter(pk__in=ids).values_list(
        "pk",
        "supporter_id",
        "supporter__email",
        "supporter__first_name",
        "supporter__last_name",
        "supporter__country",
        "supporter__status",
    )
    return [ClaimedDelivery(*row) for row in rows]


@dataclass
class BatchOutcome:
    """What one batch did, and what the task should do next."""

    sent: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, ESP message id)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, reason)
    skipped: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    # Seconds to wait before the next batch, after a transient ESP failure.
    retry_after: float | None = None
    # Whether the mailing may have more work for this task chain.
    more: bool = False


def mailing_send_batch(*, mailing_id: int, worker: str, attempt: int = 0) -> BatchOutcome:
    """Claim one batch of a sending mailing, send it over one connection, record the outcome."""
    mailing = Mailing.objects.select_related("petition").get(pk=mailing_id)
    if mailing.status != Mailing.Status.SENDING:
        return BatchOutcome()
    claimed = delivery_claim_batch(
        mailing_id=mailing_id, worker=worker, size=settings.RALLY_SEND_BATCH_SIZE
    )
    if not claimed:
        mailing_finish_if_done(mailing_id=mailing_id)
        return BatchOutcome()
    outcome = BatchOutcome(more=True)
    compiled = compiled_mailing(mailing)
    # An unsubscribe or suppression that happened after the snapshot is honoured here.
    mailable = []
    for row in claimed:
        if row.supporter_status == Supporter.Status.SUBSCRIBED:
            mailable.append(row)
        else:
            outcome.skipped.append(row.delivery_id)
    try:
        _send_claimed(compiled, mailable, outcome, attempt)
    finally:
        # Whatever happened above, every claimed row leaves this function with its outcome.
        delivery_record_outcome(outcome)
    if outcome.released:
        outcome.more = True
    return outcome


def _send_claimed(compiled, rows: list[ClaimedDelivery], outcome: BatchOutcome, attempt: int):
    if not rows:
        return
    connection = get_connection()
    with connection:
        for index, row in enumerate(rows):
            fields = merge_fields(
                compiled=compiled,
                supporter_id=row.supporter_id,
                email=row.email,
                first_name=row.first_name,
                last_name=row.last_name,
                country=row.country,
            )
            message = build_message(
                compiled=compiled, fields=fields, delivery_id=row.delivery_id, connection=connection
            )
            try:
                accepted = message.send()
            except Exception as error:  # noqa: BLE001 -- every backend raises its own types
                failure = classify_send_error(error)
                if failure.permanent:
                    outcome.failed.append((row.delivery_id, failure.reason))
                    continue
                # Back-pressure: stop this batch, return the rest to the queue, wait and retry.
                logger.warning("Transient send failure, backing off: %s", failure.reason)
                outcome.released.extend(r.delivery_id for r in rows[index:])
                backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
                outcome.retry_after = max(failure.retry_after or 0.0, random.uniform(0, backoff))  # noqa: S311
                return
            if not accepted:
                outcome.failed.append((row.delivery_id, "The email backend accepted nothing."))
                continue
            status = getattr(message, "anymail_status", None)
            message_id = (status.message_id if status else None) or ""
            outcome.sent.append((row.delivery_id, str(message_id)))


def delivery_record_outcome(outcome: BatchOutcome) -> None:
    """Write a batch's outcomes to the ledger in a few statements."""
    now = timezone.now()
    with transaction.atomic():
        if outcome.sent:
            Delivery.objects.bulk_update(
                [
                    Delivery(
                        pk=delivery_id,
                        status=Delivery.Status.SENT,
                        esp_message_id=message_id,
                        sent_at=now,
                        updated_at=now,
                    )
                    for delivery_id, message_id in outcome.sent
                ],
                ["status", "esp_message_id", "sent_at", "updated_at"],
                batch_size=500,
            )
        if outcome.failed:
            Delivery.objects.bulk_update(
                [
                    Delivery(
                        pk=delivery_id, status=Delivery.Status.FAILED, error=reason, updated_at=now
                    )
                    for delivery_id, reason in outcome.failed
                ],
                ["status", "error", "updated_at"],
                batch_size=500,
            )
        if outcome.skipped:
            Delivery.objects.filter(pk__in=outcome.skipped).update(
                status=Delivery.Status.SKIPPED, updated_at=now
            )
        if outcome.released:
            Delivery.objects.filter(pk__in=outcome.released).update(
                status=Delivery.Status.PENDING, claimed_by="", lease_expires_at=None, updated_at=now
            )


def mailing_finish_if_done(*, mailing_id: int) -> bool:
    """Mark a sending mailing SENT when its snapshot is taken and nothing is pending or claimed."""
    unfinished = Delivery.objects.filter(
        mailing_id=mailing_id, status__in=[Delivery.Status.PENDING, Delivery.Status.CLAIMED]
    )
    if unfinished.exists():
        return False
    now = timezone.now()
    return bool(
        Mailing.objects.filter(
            pk=mailing_id, status=Mailing.Status.SENDING, audience_snapshot_at__isnull=False
        ).update(status=Mailing.Status.SENT, finished_at=now, updated_at=now)
    )


def mailing_sweep() -> None:
    """Recover what dead workers and a forgetful broker left behind. Run by beat.

    - Expired leases become UNKNOWN (see the crash policy above).
    - A sending mailing with no claim for a while gets its snapshot or batch chains queued
      again: Redis may have lost them, and PostgreSQL still knows the work.
    """
    now = timezone.now()
    expired = Delivery.objects.filter(status=Delivery.Status.CLAIMED, lease_expires_at__lt=now)
    lost = expired.update(
        status=Delivery.Status.UNKNOWN,
        error="The worker that claimed this message stopped before recording the ESP's answer; "
        "it may or may not have been sent, so it is not sent again.",
        updated_at=now,
    )
    if lost:
        logger.error("Marked %s deliveries UNKNOWN after their worker was lost", lost)
    stalled_before = now - timedelta(seconds=settings.RALLY_SEND_STALL_SECONDS)
    for mailing_id, snapshot_at, heartbeat_at in Mailing.objects.filter(
        status=Mailing.Status.SENDING
    ).values_list("pk", "audience_snapshot_at", "heartbeat_at"):
        if snapshot_at is None:
            tasks.mailing_snapshot_task.delay(mailing_id)
        elif not mailing_finish_if_done(mailing_id=mailing_id) and (
            heartbeat_at is None or heartbeat_at < stalled_before
        ):
            mailing_start_batches(mailing_id=mailing_id)
