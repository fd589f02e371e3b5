"""Settle the unknown deliveries: ask the ESP, then mark sent, send again once, or ask later.

By beat (delivery_reconcile_unknown_task), every RALLY_RECONCILE_SECONDS. The crash policy in
mailings/sending/__init__.py says why a delivery becomes unknown and why it is never re-sent
blindly; this is how most of them are settled after all.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.sending.batches import BatchOutcome, delivery_record_outcome, delivery_resend_batch
from mailings.sending.control import mailing_finish_if_done
from mailings.sending.reconcile.base import Accepted, Reconciler
from mailings.sending.reconcile.registry import reconciler_for

logger = logging.getLogger(__name__)

Status = Delivery.Status
# Unknown deliveries asked about in one run, the longest-waiting first; the rest wait a run.
ROWS_PER_RUN = 5_000
# How far Rally's clock and the ESP's may disagree: the search window is widened by this.
CLOCK_SKEW = timedelta(seconds=60)

FOUND = "The ESP had accepted it (found by the reconciler after its worker was lost)."
PUT_BACK = (
    "The ESP proved it never accepted it after its worker was lost, so it was sent again, once."
)
NOT_SENT_TWICE = (
    "The ESP proved it never accepted it, twice; it was sent again once already and is not sent "
    "a third time."
)
CANCELLED = "The ESP proved it never accepted it, and the mailing was cancelled meanwhile."
ASK_AGAIN = "It may or may not have been sent; the ESP could not say yet ({reason}), asked again."
TOO_OLD = (
    "It may or may not have been sent, so it is not sent again: it was sent more than {days} "
    "days ago, longer than the ESP keeps its record of what it accepted."
)
GAVE_UP = (
    "It may or may not have been sent, so it is not sent again: the ESP could not say after "
    "{attempts} questions ({reason})."
)


@dataclass
class ReconcileOutcome:
    """What one run settled, in deliveries."""

    asked: int = 0
    found_sent: int = 0  # the ESP had them: now SENT
    put_back: int = 0  # the ESP never had them: PENDING, to be sent once more
    cancelled: int = 0  # never had them, and their mailing was cancelled
    unanswered: int = 0  # asked again next run
    given_up: int = 0  # stay UNKNOWN, with the reason
    resent: int = 0  # put-back deliveries sent in this run


@dataclass(frozen=True)
class _Unknown:
    pk: int
    mailing_id: int
    lease_expires_at: datetime | None
    updated_at: datetime
    resent_at: datetime | None


def delivery_reconcile_unknown(*, worker: str = "reconciler") -> ReconcileOutcome:
    """Ask the ESP about each unknown delivery whose wait is over, and act on its answer.

    - Accepted: SENT, with the ESP's message id, counted in the report as any send is.
    - Proven never accepted: PENDING again, once (`resent_at`, set by a conditional UPDATE),
      and sent through the normal claim, here if no batch chain will come for it.
    - No answer: asked again after RALLY_RECONCILE_DELAY_SECONDS, up to
      RALLY_RECONCILE_MAX_ATTEMPTS times; then it stays UNKNOWN, saying why.

    A delivery is asked about only RALLY_RECONCILE_DELAY_SECONDS after it became unknown, so
    that the ESP's search has caught up with everything it accepted. Where the ESP cannot be
    asked (plain SMTP) nothing changes. Safe to run twice at once: every change is conditional
    on the row's status, and the put-back rows are sent by whoever claims them.
    """
    outcome = ReconcileOutcome()
    reconciler = reconciler_for(get_connection())
    if reconciler is None:
        return outcome
    ready_before = timezone.now() - timedelta(seconds=settings.RALLY_RECONCILE_DELAY_SECONDS)
    rows = (
        Delivery.objects.filter(
            status=Status.UNKNOWN,
            reconcile_attempts__lt=settings.RALLY_RECONCILE_MAX_ATTEMPTS,
            updated_at__lte=ready_before,
        )
        .order_by("updated_at")
        .values_list("pk", "mailing_id", "lease_expires_at", "updated_at", "resent_at")
    )
    by_mailing: dict[int, list[_Unknown]] = defaultdict(list)
    for row in rows[:ROWS_PER_RUN]:
        by_mailing[row[1]].append(_Unknown(*row))
    for mailing_id, unknown in by_mailing.items():
        _reconcile_mailing(reconciler, mailing_id, unknown, ready_before, outcome)
    _send_put_back(worker, outcome)
    if outcome.asked or outcome.resent:
        logger.info("Reconciled unknown deliveries: %s", outcome)
    return outcome


def _reconcile_mailing(
    reconciler: Reconciler,
    mailing_id: int,
    unknown: list[_Unknown],
    ready_before: datetime,
    outcome: ReconcileOutcome,
) -> None:
    if reconciler.record_days is not None:
        forgotten_before = timezone.now() - timedelta(days=reconciler.record_days)
        too_old = [row for row in unknown if _sent_by(row) < forgotten_before]
        if too_old:
            outcome.given_up += Delivery.objects.filter(
                pk__in=[row.pk for row in too_old], status=Status.UNKNOWN
            ).update(
                reconcile_attempts=settings.RALLY_RECONCILE_MAX_ATTEMPTS,
                error=TOO_OLD.format(days=reconciler.record_days),
                updated_at=timezone.now(),
            )
            unknown = [row for row in unknown if row not in too_old]
            if not unknown:
                return
    lease = timedelta(seconds=settings.RALLY_SEND_LEASE_SECONDS)
    # Each was claimed when its lease began, and sent, if at all, before it became unknown.
    since = min(_sent_by(row) - lease for row in unknown) - CLOCK_SKEW
    ids = [row.pk for row in unknown]
    witness = _witness(reconciler, mailing_id, unknown, ready_before)
    asked = ids + ([witness] if witness else [])
    lookup = reconciler.look_up(
        mailing_id=mailing_id, delivery_ids=asked, since=since, until=ready_before
    )
    answers, reason = lookup.answers, lookup.reason
    if witness is not None and witness in answers and answers[witness] is None:
        # The search does not list a message the ESP accepted after all of these: it is
        # behind, and "not found" proves nothing yet.
        answers = {}
        reason = f"its search does not list yet a message it accepted later (delivery {witness})"
    outcome.asked += len(ids)
    accepted = {pk: answers[pk] for pk in ids if answers.get(pk) is not None}
    never = [row for row in unknown if row.pk in answers and answers[row.pk] is None]
    unanswered = [pk for pk in ids if pk not in answers]
    _record_found(accepted, outcome)
    _put_back(never, outcome)
    _record_unanswered(unanswered, reason or "no answer", outcome)


def _sent_by(row: _Unknown) -> datetime:
    """Return when a delivery was sent at the latest, if it was."""
    return row.lease_expires_at or row.updated_at


def _witness(
    reconciler: Reconciler, mailing_id: int, unknown: list[_Unknown], ready_before: datetime
) -> int | None:
    """Return a delivery of the mailing the ESP accepted after any of `unknown` was sent.

    Recorded sent before `ready_before`, so the search should list it; if it does not, the
    search is behind. None when the ESP's search does not lag, or no such delivery exists
    (the delay alone must then do).
    """
    if not reconciler.search_lags:
        return None
    return (
        Delivery.objects.filter(
            mailing_id=mailing_id,
            status=Status.SENT,
            sent_at__gte=max(row.updated_at for row in unknown),
            sent_at__lte=ready_before,
        )
        .exclude(esp_message_id="")
        .order_by("-sent_at")
        .values_list("pk", flat=True)
        .first()
    )


def _record_found(accepted: dict[int, Accepted], outcome: ReconcileOutcome) -> None:
    """Mark SENT what the ESP accepted, as a batch records a send (report counters included)."""
    if not accepted:
        return
    with transaction.atomic():
        still_unknown = list(
            Delivery.objects.select_for_update()
            .filter(pk__in=list(accepted), status=Status.UNKNOWN)
            .values_list("pk", flat=True)
        )
        delivery_record_outcome(
            BatchOutcome(sent=[(pk, accepted[pk].message_id) for pk in still_unknown])
        )
        Delivery.objects.filter(pk__in=still_unknown).update(error=FOUND)
        # Sent now, as far as the frequency cap counts: the mailing beats, as a claim makes
        # it (frequency_cap.frequency_cap_may_apply).
        mailing_ids = Delivery.objects.filter(pk__in=still_unknown).values("mailing_id")
        Mailing.objects.filter(pk__in=mailing_ids).update(heartbeat_at=timezone.now())
    outcome.found_sent += len(still_unknown)


def _put_back(never: list[_Unknown], outcome: ReconcileOutcome) -> None:
    """Send again, once, what the ESP never accepted; a second time it stays unknown."""
    if not never:
        return
    now = timezone.now()
    mailing_cancelled = Mailing.objects.filter(
        pk=never[0].mailing_id, status=Mailing.Status.CANCELLED
    ).exists()
    # The conditions are the guarantee: a row leaves UNKNOWN for PENDING only while it has
    # never been put back, whoever else runs this at the same moment. They are on the row
    # itself, never through a join: PostgreSQL checks a row's own conditions again once a
    # concurrent update of it commits, but not a subquery's.
    once = Delivery.objects.filter(
        pk__in=[row.pk for row in never if row.resent_at is None],
        status=Status.UNKNOWN,
        resent_at__isnull=True,
    )
    if mailing_cancelled:
        outcome.cancelled += once.update(status=Status.CANCELLED, error=CANCELLED, updated_at=now)
    else:
        outcome.put_back += once.update(
            status=Status.PENDING,
            resent_at=now,
            claimed_by="",
            lease_expires_at=None,
            error=PUT_BACK,
            updated_at=now,
        )
    outcome.given_up += Delivery.objects.filter(
        pk__in=[row.pk for row in never if row.resent_at is not None], status=Status.UNKNOWN
    ).update(
        reconcile_attempts=settings.RALLY_RECONCILE_MAX_ATTEMPTS,
        error=NOT_SENT_TWICE,
        updated_at=now,
    )


def _record_unanswered(ids: list[int], reason: str, outcome: ReconcileOutcome) -> None:
    """Count a question the ESP could not answer; at the limit, say it stays unknown."""
    if not ids:
        return
    now = timezone.now()
    limit = settings.RALLY_RECONCILE_MAX_ATTEMPTS
    rows = Delivery.objects.filter(pk__in=ids, status=Status.UNKNOWN)
    reason = reason[:1000]
    # The last question first, so a row is counted by one of the two updates only.
    outcome.given_up += rows.filter(reconcile_attempts__gte=limit - 1).update(
        reconcile_attempts=F("reconcile_attempts") + 1,
        error=GAVE_UP.format(attempts=limit, reason=reason),
        updated_at=now,
    )
    outcome.unanswered += rows.filter(reconcile_attempts__lt=limit - 1).update(
        reconcile_attempts=F("reconcile_attempts") + 1,
        error=ASK_AGAIN.format(reason=reason),
        updated_at=now,
    )


def _send_put_back(worker: str, outcome: ReconcileOutcome) -> None:
    """Send the put-back deliveries of mailings no batch chain will come back to.

    A paused mailing's wait for its resume. Rows the ESP refuses for now stay pending and are
    tried again next run.
    """
    mailing_ids = (
        Delivery.objects.filter(status=Status.PENDING, resent_at__isnull=False)
        .values_list("mailing_id", flat=True)
        .distinct()
    )
    for mailing_id in list(mailing_ids):
        while True:
            batch = delivery_resend_batch(mailing_id=mailing_id, worker=worker)
            outcome.resent += len(batch.sent)
            if not batch.more:
                break
        mailing_finish_if_done(mailing_id=mailing_id)


@dataclass(frozen=True)
class UnknownSummary:
    """What a campaigner is told of a mailing's unknown deliveries (its progress page)."""

    unknown: int
    # Whether the configured ESP can be asked about them at all.
    checkable: bool
    # Those the reconciler stopped asking about: they stay unknown.
    given_up: int

    @property
    def waiting(self) -> int:
        """Return how many are still to be asked about."""
        return self.unknown - self.given_up if self.checkable else 0


def mailing_unknown_summary(mailing: Mailing) -> UnknownSummary:
    """Count a mailing's unknown deliveries and say whether the ESP can settle them."""
    unknown = Delivery.objects.filter(mailing=mailing, status=Status.UNKNOWN)
    count = unknown.count()
    checkable = reconciler_for(get_connection()) is not None
    given_up = (
        unknown.filter(reconcile_attempts__gte=settings.RALLY_RECONCILE_MAX_ATTEMPTS).count()
        if count and checkable
        else 0
    )
    return UnknownSummary(unknown=count, checkable=checkable, given_up=given_up)
