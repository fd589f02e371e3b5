"""Claim a batch of deliveries, send it over one connection, record every outcome."""

import contextlib
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import requests
import structlog
from django.conf import settings
from django.core.mail import get_connection
from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from mailings.content.rendering import (
    CompiledMailing,
    build_message,
    compiled_mailing,
    merge_fields,
)
from mailings.models import Delivery, Mailing
from mailings.report_counts import DeliveryKeys, report_sends_count
from mailings.sending.backpressure import breaker_failure_rate, breaker_record, send_rate_limiter
from mailings.sending.breaker import mailing_check_esp_feedback_from_send
from mailings.sending.control import mailing_finish_if_done, mailing_pause
from mailings.sending.errors import SendError, classify_send_error
from mailings.sending.esp import batch_sender_for
from mailings.sending.esp.base import MessageResult
from mailings.sending.frequency_cap import (
    claims_take_turns,
    frequency_cap_may_apply,
    supporters_over_frequency_cap,
)
from supporters.engagement_records import mailed_upsert_sql
from supporters.models import Supporter

logger = logging.getLogger(__name__)

# A transient failure is retried in place this many times, waiting at most INLINE_WAIT_MAX
# seconds each time; past that the batch hands its rest back and the chain backs off.
INLINE_RETRIES = 3
INLINE_WAIT_MAX_SECONDS = 5.0
# Back-off of a chain after a batch gave up: base * 2**attempt seconds, capped, full jitter.
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
# How often a chain that caught up with a snapshot under way looks for new rows.
SNAPSHOT_POLL_SECONDS = 0.5


@dataclass
class ClaimedDelivery:
    delivery_id: int
    supporter_id: int
    email: str
    first_name: str
    last_name: str
    country: str
    supporter_status: str
    language: str
    # When the supporter's own pause of their mail ends, if they paused it.
    paused_until: datetime | None
    # The version the snapshot chose for them ("" for the default): what the ledger records.
    version_language: str
    # Their A/B variant ("" when the mailing tests nothing), chosen by the snapshot too.
    variant: str


def delivery_claim_batch(
    *, mailing_id: int, worker: str, size: int, resent_only: bool = False
) -> list[ClaimedDelivery]:
    """Claim up to `size` pending deliveries of a mailing for one worker, under a lease.

    Concurrent workers never claim the same row: on PostgreSQL locked rows are skipped
    (SKIP LOCKED); on SQLite the transaction holds the database's single write lock.
    `resent_only` claims only those the reconciler put back to be sent again.

    A row whose supporter is over the frequency cap (sending/frequency_cap.py) is not claimed
    but recorded SKIPPED, with the cap as its reason, in the same transaction; when a whole
    batch is, the next is tried, so that an empty answer still means nothing is left to claim.
    """
    pending = Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING)
    if resent_only:
        pending = pending.filter(resent_at__isnull=False)
    while True:
        now = timezone.now()
        with transaction.atomic():
            claims_take_turns(mailing_id=mailing_id)
            candidates = list(
                pending.order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", "supporter_id")[:size]
            )
            if not candidates:
                return []
            over_cap = {}
            if frequency_cap_may_apply(mailing_id=mailing_id, now=now):
                over_cap = supporters_over_frequency_cap(
                    mailing_id=mailing_id,
                    supporter_ids=[supporter_id for _, supporter_id in candidates],
                    now=now,
                )
                _skip_over_frequency_cap(candidates, over_cap, now)
            ids = [pk for pk, supporter_id in candidates if supporter_id not in over_cap]
            if ids:
                return _claim(mailing_id, ids, worker, now)


def _skip_over_frequency_cap(
    candidates: list[tuple[int, int]], over_cap: dict[int, str], now: datetime
) -> None:
    """Record SKIPPED, with the cap's reason, the candidates whose supporter is over a cap."""
    for reason in sorted(set(over_cap.values())):
        skipped = Delivery.objects.filter(
            pk__in=[pk for pk, supporter_id in candidates if over_cap.get(supporter_id) == reason]
        ).update(status=Delivery.Status.SKIPPED, skip_reason=reason, updated_at=now)
        logger.info("Skipped %s deliveries: %s", skipped, reason, extra={"skip_reason": reason})


def _claim(mailing_id: int, ids: list[int], worker: str, now: datetime) -> list[ClaimedDelivery]:
    """Claim the rows `ids` for `worker` and read what sending them needs (in the claim's
    transaction)."""
    lease_expires_at = now + timedelta(seconds=settings.RALLY_SEND_LEASE_SECONDS)
    Mailing.objects.filter(pk=mailing_id).update(heartbeat_at=now)
    # Read inside the claim's transaction: a claim whose rows never reached this worker
    # (the connection lost in between) is rolled back, where it would otherwise stay
    # claimed by nobody and turn UNKNOWN without a message having been sent.
    if db_connection.vendor == "postgresql":
        return _claim_returning_rows(ids, worker, lease_expires_at, now)
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.CLAIMED,
        claimed_by=worker,
        lease_expires_at=lease_expires_at,
        updated_at=now,
    )
    rows = Delivery.objects.filter(pk__in=ids).values_list(*_CLAIMED_COLUMNS)
    return [ClaimedDelivery(*row) for row in rows]


_CLAIMED_COLUMNS = (
    "pk",
    "supporter_id",
    "supporter__email",
    "supporter__first_name",
    "supporter__last_name",
    "supporter__country",
    "supporter__status",
    "supporter__language",
    "supporter__paused_until",
    "version_language",
    "variant",
)
# The claim and the read in one statement, the ids as one array: a statement whose text is
# the same for every batch is parsed once by psycopg (it caches statements under 4 KB, and a
# list of 500 placeholders is not), and PostgreSQL reads an array faster than an IN list.
_CLAIM_RETURNING_ROWS = f"""
    WITH claimed AS (
        UPDATE {Delivery._meta.db_table} SET status = %s, claimed_by = %s,
            lease_expires_at = %s, updated_at = %s
        WHERE id = ANY(%s::bigint[])
        RETURNING id, supporter_id, version_language, variant
    )
    SELECT claimed.id, claimed.supporter_id, supporter.email, supporter.first_name,
        supporter.last_name, supporter.country, supporter.status, supporter.language,
        supporter.paused_until, claimed.version_language, claimed.variant
    FROM claimed JOIN {Supporter._meta.db_table} AS supporter
        ON supporter.id = claimed.supporter_id
    ORDER BY claimed.id
"""  # noqa: S608 -- table names from the models


def _claim_returning_rows(
    ids: list[int], worker: str, lease_expires_at: datetime, now: datetime
) -> list[ClaimedDelivery]:
    with db_connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_RETURNING_ROWS,
            [Delivery.Status.CLAIMED, worker, lease_expires_at, now, ids],
        )
        return [ClaimedDelivery(*row) for row in cursor.fetchall()]


@dataclass
class BatchOutcome:
    """What one batch did, and what the task should do next."""

    sent: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, ESP message id)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, reason)
    unknown: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, reason)
    # Claimed, but no longer mailable when sending (skip reason NOT_MAILABLE).
    skipped: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    # Send attempts and failed attempts, retries included: the circuit breaker's numbers.
    attempts: int = 0
    failed_attempts: int = 0
    last_error: str = ""
    # Seconds to wait before the chain's next batch, after the ESP kept failing.
    retry_after: float | None = None
    # Seconds to wait for the snapshot to add rows, when the chain caught up with it.
    wait_seconds: float | None = None
    # What the report breaks each claimed delivery down by, known from the claim: recording the
    # sends need not read the rows again.
    report_keys: dict[int, DeliveryKeys] = field(default_factory=dict)
    # Whether the mailing may have more work for this task chain.
    more: bool = False


def send_batch_size() -> int:
    """Return how many rows a batch claims: RALLY_SEND_BATCH_SIZE, or fewer under a contract rate.

    Claimed rows are sent before their lease ends (RALLY_SEND_LEASE_SECONDS), or the sweep marks
    them unknown while they are still going out. Under RALLY_SEND_RATE_PER_SECOND every running
    batch shares the rate, up to RALLY_SEND_PARALLELISM of them, so a batch takes as long as
    that many batches take at the rate: it is sized to take at most half the lease.
    """
    size = settings.RALLY_SEND_BATCH_SIZE
    rate = settings.RALLY_SEND_RATE_PER_SECOND
    if rate > 0:
        within_half_the_lease = rate * settings.RALLY_SEND_LEASE_SECONDS / 2
        size = min(size, int(within_half_the_lease / max(1, settings.RALLY_SEND_PARALLELISM)))
    return max(1, size)


def mailing_send_batch(*, mailing_id: int, worker: str, attempt: int = 0) -> BatchOutcome:
    """Claim one batch of a sending mailing, send it over one connection, record the outcome.

    Every line logged meanwhile carries the mailing's id (and the batch's, _send_claimed).
    """
    with structlog.contextvars.bound_contextvars(mailing_id=mailing_id):
        return _mailing_send_batch(mailing_id=mailing_id, worker=worker, attempt=attempt)


def _mailing_send_batch(*, mailing_id: int, worker: str, attempt: int) -> BatchOutcome:
    # All a batch needs of the mailing; compiled_mailing loads the rest once per process.
    mailing = Mailing.objects.only("pk", "status", "updated_at", "audience_snapshot_at").get(
        pk=mailing_id
    )
    if mailing.status != Mailing.Status.SENDING:
        return BatchOutcome()
    claimed = delivery_claim_batch(mailing_id=mailing_id, worker=worker, size=send_batch_size())
    if not claimed:
        if mailing.audience_snapshot_at is None:
            # Sending started with the snapshot's first slice: more rows are on their way.
            return BatchOutcome(wait_seconds=SNAPSHOT_POLL_SECONDS)
        mailing_finish_if_done(mailing_id=mailing_id)
        return BatchOutcome()
    return _send_claimed(mailing, claimed, worker=worker, attempt=attempt)


# The mailings whose re-sent deliveries the reconciler sends itself: those no batch chain will
# come back to. A paused mailing's wait for its resume; a cancelled one's are never sent.
RESENDABLE = (Mailing.Status.SENDING, Mailing.Status.WAITING_FOR_WINNER, Mailing.Status.SENT)


def delivery_resend_batch(*, mailing_id: int, worker: str) -> BatchOutcome:
    """Claim and send one batch of the deliveries the reconciler put back to be sent again.

    The same claim, lease and recording as any batch (mailing_send_batch), so a delivery is
    sent by whoever claims it first, once; a mailing that finished (or waits for its A/B
    winner) still sends them. The reconciler calls it until `more` is False.
    """
    mailing = Mailing.objects.only("pk", "status", "updated_at", "audience_snapshot_at").get(
        pk=mailing_id
    )
    if mailing.status not in RESENDABLE:
        return BatchOutcome()
    claimed = delivery_claim_batch(
        mailing_id=mailing_id, worker=worker, size=send_batch_size(), resent_only=True
    )
    if not claimed:
        return BatchOutcome()
    outcome = _send_claimed(mailing, claimed, worker=worker, attempt=0)
    # Rows the ESP refused for now stay pending: the reconciler's next run tries them again.
    outcome.more = outcome.more and not outcome.released
    return outcome


def _send_claimed(
    mailing: Mailing, claimed: list[ClaimedDelivery], *, worker: str, attempt: int
) -> BatchOutcome:
    """Send claimed deliveries over one connection and record every outcome.

    Every line logged meanwhile carries the mailing's id and a `batch_id` of this batch's own;
    its last line ("Batch done") names the deliveries it claimed, by their ids.
    """
    with structlog.contextvars.bound_contextvars(
        mailing_id=mailing.pk, batch_id=secrets.token_hex(6)
    ):
        return _send_claimed_rows(mailing, claimed, worker=worker, attempt=attempt)


def _send_claimed_rows(
    mailing: Mailing, claimed: list[ClaimedDelivery], *, worker: str, attempt: int
) -> BatchOutcome:
    mailing_id = mailing.pk
    outcome = BatchOutcome(
        more=True,
        report_keys={
            row.delivery_id: DeliveryKeys(mailing_id, row.version_language, row.variant, row.email)
            for row in claimed
        },
    )
    # An unsubscribe, suppression or pause that happened after the snapshot is honoured here.
    mailable = []
    now = timezone.now()
    for row in claimed:
        if Supporter.is_mailable(
            status=row.supporter_status, paused_until=row.paused_until, at=now
        ):
            mailable.append(row)
        else:
            outcome.skipped.append(row.delivery_id)
    try:
        if mailable:
            _send_rows(compiled_mailing(mailing), mailable, outcome, attempt)
    except Exception:
        # A bug or an outage outside the send call itself (sends catch their own errors):
        # the rows not yet handed to the ESP go back to the queue rather than to UNKNOWN.
        done = {row[0] for row in outcome.sent + outcome.failed + outcome.unknown}
        outcome.released.extend(row.delivery_id for row in mailable if row.delivery_id not in done)
        raise
    finally:
        # Every claimed row leaves this function with its outcome recorded.
        _record_outcome_despite_a_lost_connection(outcome, worker=worker)
    logger.info(
        "Batch done: %s sent, %s failed, %s unknown, %s skipped, %s handed back",
        len(outcome.sent),
        len(outcome.failed),
        len(outcome.unknown),
        len(outcome.skipped),
        len(outcome.released),
        extra={
            "first_delivery_id": min(row.delivery_id for row in claimed),
            "last_delivery_id": max(row.delivery_id for row in claimed),
            "delivery_count": len(claimed),
        },
    )
    _trip_breaker_if_failing(mailing_id, outcome)
    if outcome.sent:
        # The sample grew: complaints that came in while it was too small may now be too many.
        mailing_check_esp_feedback_from_send(mailing_id=mailing_id)
    return outcome


def _send_rows(
    compiled: CompiledMailing, rows: list[ClaimedDelivery], outcome: BatchOutcome, attempt: int
) -> None:
    limiter = send_rate_limiter()
    permits = 0
    connection = get_connection()
    _open(connection)
    # Where the ESP takes many messages a request, send them so; otherwise one at a time.
    batch_sender = batch_sender_for(connection)
    group_size = batch_sender.max_batch if batch_sender else 1
    send_group = batch_sender.send if batch_sender else partial(_send_one_by_one, connection)
    try:
        for start in range(0, len(rows), group_size):
            group = rows[start : start + group_size]
            while permits < len(group):
                permits += limiter.acquire(len(rows) - start - permits)
            permits -= len(group)
            messages = [_build(compiled, row, connection) for row in group]
            results, failure = _send_with_retries(send_group, messages, connection, outcome)
            if failure is None:
                _record_results(group, results, outcome)
            elif failure.outcome_unknown:
                outcome.unknown.extend((row.delivery_id, failure.reason) for row in group)
                _reconnect(connection)
            elif failure.permanent:
                outcome.failed.extend((row.delivery_id, failure.reason) for row in group)
            else:
                # Back-pressure: hand the rest back to the queue; the chain waits, then retries.
                outcome.released.extend(row.delivery_id for row in rows[start:])
                backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
                outcome.retry_after = max(failure.retry_after or 0.0, random.uniform(0, backoff))  # noqa: S311
                logger.warning(
                    "ESP keeps failing; batch handed back, retrying in %.1fs: %s",
                    outcome.retry_after,
                    failure.reason,
                )
                return
    finally:
        connection.close()


def _build(compiled: CompiledMailing, row: ClaimedDelivery, connection):
    fields = merge_fields(
        compiled=compiled,
        supporter_id=row.supporter_id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        country=row.country,
        language=row.language,
    )
    return build_message(
        compiled=compiled,
        fields=fields,
        delivery_id=row.delivery_id,
        connection=connection,
        version=row.version_language,
        variant=row.variant,
        tracked_supporter_id=row.supporter_id,
    )


def _record_results(
    group: list[ClaimedDelivery], results: list[MessageResult], outcome: BatchOutcome
) -> None:
    for row, result in zip(group, results, strict=True):
        if result.failure is None:
            outcome.sent.append((row.delivery_id, result.message_id))
            continue
        outcome.failed_attempts += 1
        outcome.last_error = result.failure.reason
        if result.failure.outcome_unknown:
            outcome.unknown.append((row.delivery_id, result.failure.reason))
        elif result.failure.permanent:
            outcome.failed.append((row.delivery_id, result.failure.reason))
        else:
            # Refused for now inside an accepted batch: back to the queue for a later batch.
            outcome.released.append(row.delivery_id)


def _send_one_by_one(connection, messages) -> list[MessageResult]:
    """Send through the Django/anymail backend, one message per call (raises on failure)."""
    (message,) = messages
    if not message.send():
        return [MessageResult(failure=SendError("The backend accepted nothing.", permanent=True))]
    status = getattr(message, "anymail_status", None)
    return [MessageResult(message_id=str((status.message_id if status else None) or ""))]


def _send_with_retries(
    send_group, messages, connection, outcome: BatchOutcome
) -> tuple[list[MessageResult], SendError | None]:
    """Send a group of messages, retrying transient failures in place; return (results, failure)."""
    for retry in range(INLINE_RETRIES + 1):
        outcome.attempts += len(messages)
        try:
            return send_group(messages), None
        except Exception as error:  # noqa: BLE001 -- every backend raises its own types
            failure = classify_send_error(error)
        outcome.failed_attempts += len(messages)
        outcome.last_error = failure.reason
        if failure.permanent or failure.outcome_unknown or retry == INLINE_RETRIES:
            return [], failure
        # The ESP's Retry-After when it gave one, never less than a short exponential back-off.
        wait = max(failure.retry_after or 0.0, 0.1 * 2**retry)
        if wait > INLINE_WAIT_MAX_SECONDS:
            return [], failure
        # Waiting is the back-pressure itself; jitter keeps workers from retrying in lockstep.
        time.sleep(wait * random.uniform(1.0, 1.5))  # noqa: S311
        _reconnect(connection)
    raise AssertionError("unreachable")


def _open(connection) -> None:
    """Open one connection for the whole batch (a backend would otherwise open one a message).

    A failure here is not fatal: the first send tries again and classifies what it raises.
    """
    try:
        connection.open()
    except Exception as error:  # noqa: BLE001 -- each backend raises its own types
        logger.warning("Connecting to the ESP failed: %s", error)
        return
    session = getattr(connection, "session", None)
    if isinstance(session, requests.Session) and session.trust_env:
        # Relies on requests internals (trust_env, merge_environment_settings). requests reads
        # proxy and CA bundle settings from the environment on every request, a sizeable share
        # of anymail's cost per message (docs/performance.md, "ESP fast paths"): read them once
        # per batch instead. tests/mailings/sending/test_esp_proxy_settings.py fails if requests
        # stops honouring session.proxies, session.verify and trust_env this way. (~/.netrc,
        # which trust_env also reads, is not read: ESP APIs authenticate with their own token.)
        api_url = getattr(connection, "api_url", "")
        if api_url:
            environment = session.merge_environment_settings(api_url, {}, None, None, None)
            session.proxies.update(environment["proxies"])
            session.verify = environment["verify"]
            session.trust_env = False


def _reconnect(connection) -> None:
    """Drop a connection that may be broken (a 421 or a reset) and open a fresh one."""
    # Closing a broken connection may fail; it is gone either way.
    with contextlib.suppress(Exception):
        connection.close()
    _open(connection)


def _trip_breaker_if_failing(mailing_id: int, outcome: BatchOutcome) -> None:
    """Pause the mailing when too many sends failed recently, saying why in the admin."""
    breaker_record(
        mailing_id=mailing_id, attempts=outcome.attempts, failures=outcome.failed_attempts
    )
    if not outcome.failed_attempts:
        return
    attempts, failure_rate = breaker_failure_rate(mailing_id=mailing_id)
    if (
        attempts >= settings.RALLY_BREAKER_MIN_ATTEMPTS
        and failure_rate > settings.RALLY_BREAKER_FAILURE_RATE
    ):
        reason = (
            f"Paused automatically: {failure_rate:.0%} of {attempts} send attempts failed in "
            f"the last {settings.RALLY_BREAKER_WINDOW_SECONDS} s. Last error: "
            f"{outcome.last_error}"
        )
        if mailing_pause(mailing_id=mailing_id, reason=reason):
            logger.error("Mailing %s: %s", mailing_id, reason)


def _record_outcome_despite_a_lost_connection(outcome: BatchOutcome, *, worker: str) -> None:
    """Record a batch's outcome; when the database connection turns out lost, reconnect, retry.

    The connection sat idle while the ESP took the batch, so a database restart, a failover or
    a terminated session shows up at this write first. The ESP has answered by now: without a
    second try the rows would stay claimed until the sweep marks them UNKNOWN, though the
    answer was in hand. The retry writes only the rows this worker still holds, in case the
    first commit went through and only its acknowledgement was lost.
    """
    try:
        delivery_record_outcome(outcome)
    except (OperationalError, InterfaceError) as error:
        if db_connection.in_atomic_block:
            raise  # Someone else's transaction: not ours to reconnect.
        logger.warning("Recording a batch failed (%s); recording it again", error)
        db_connection.close()
        still_ours = set(
            Delivery.objects.filter(
                pk__in=_outcome_delivery_ids(outcome),
                status=Delivery.Status.CLAIMED,
                claimed_by=worker,
            ).values_list("pk", flat=True)
        )
        delivery_record_outcome(_outcome_restricted_to(outcome, still_ours))


def _outcome_delivery_ids(outcome: BatchOutcome) -> list[int]:
    detailed = outcome.sent + outcome.failed + outcome.unknown
    return [pk for pk, _ in detailed] + outcome.skipped + outcome.released


def _outcome_restricted_to(outcome: BatchOutcome, delivery_ids: set[int]) -> BatchOutcome:
    return BatchOutcome(
        sent=[row for row in outcome.sent if row[0] in delivery_ids],
        failed=[row for row in outcome.failed if row[0] in delivery_ids],
        unknown=[row for row in outcome.unknown if row[0] in delivery_ids],
        skipped=[pk for pk in outcome.skipped if pk in delivery_ids],
        released=[pk for pk in outcome.released if pk in delivery_ids],
    )


def delivery_record_outcome(outcome: BatchOutcome) -> None:
    """Write a batch's outcomes to the ledger in a few statements."""
    now = timezone.now()
    with transaction.atomic():
        _set_status_with_detail(Delivery.Status.SENT, "esp_message_id", outcome.sent, now)
        _set_status_with_detail(Delivery.Status.FAILED, "error", outcome.failed, now)
        _set_status_with_detail(Delivery.Status.UNKNOWN, "error", outcome.unknown, now)
        if outcome.skipped:
            Delivery.objects.filter(pk__in=outcome.skipped).update(
                status=Delivery.Status.SKIPPED,
                skip_reason=Delivery.SkipReason.NOT_MAILABLE,
                updated_at=now,
            )
        if outcome.released:
            Delivery.objects.filter(pk__in=outcome.released).update(
                status=Delivery.Status.PENDING, claimed_by="", lease_expires_at=None, updated_at=now
            )
        # Last, so the report's counters of this hour are locked only until the commit.
        report_sends_count(
            delivery_ids=[pk for pk, _ in outcome.sent], at=now, keys=outcome.report_keys
        )


def _set_status_with_detail(status: str, column: str, rows: list[tuple[int, str]], now) -> None:
    """Set `status` and a per-row text column on many deliveries in one statement.

    Django's bulk_update builds a CASE per row, which profiling found costly
    (docs/performance.md, "Ledger writes"); two arrays unnested (PostgreSQL) or executemany
    (SQLite) do the same work cheaply.

    Marking deliveries SENT also counts a mailing more in their supporters' Engagement rows
    (supporters/engagement_records.py), for exactly the rows this UPDATE changed: on
    PostgreSQL in the same statement (the UPDATE's RETURNING feeds the upsert), on SQLite in
    one more.
    """
    if not rows:
        return
    table = Delivery._meta.db_table
    sent = status == Delivery.Status.SENT
    sent_at = now if sent else None
    with db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            # Two arrays, not a VALUES list: the statement's text is the same for every batch,
            # so psycopg parses it once (see _CLAIM_RETURNING_ROWS).
            update = (
                f"UPDATE {table} AS delivery SET status = %s, {column} = batch.detail, "  # noqa: S608
                "sent_at = COALESCE(%s::timestamptz, delivery.sent_at), updated_at = %s "
                "FROM unnest(%s::bigint[], %s::text[]) AS batch (id, detail) "
                "WHERE delivery.id = batch.id"
            )
            ids, details = zip(*rows, strict=True)
            params = [status, sent_at, now, list(ids), list(details)]
            if sent:
                update = f"WITH sent_delivery AS ({update} RETURNING delivery.supporter_id) "
                update += mailed_upsert_sql(sent_supporters="sent_delivery")
                params.append(now)
            cursor.execute(update, params)
        else:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, {column} = %s, "  # noqa: S608
                "sent_at = COALESCE(%s, sent_at), updated_at = %s WHERE id = %s",
                [(status, detail, sent_at, now, delivery_id) for delivery_id, detail in rows],
            )
            if sent:
                ids = [delivery_id for delivery_id, _ in rows]
                placeholders = ", ".join(["%s"] * len(ids))
                cursor.execute(
                    mailed_upsert_sql(
                        sent_supporters=f"(SELECT supporter_id FROM {table} "  # noqa: S608
                        f"WHERE id IN ({placeholders}))"
                    ),
                    # In the statement's order: the time sent (its SELECT list), then the ids.
                    [db_connection.ops.adapt_datetimefield_value(now), *ids],
                )
