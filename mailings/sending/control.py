"""Mailing state changes a campaigner (or the system) asks for: send, pause, resume, cancel, …

Every transition is one conditional UPDATE (`_mailing_move`): a second call, or a concurrent
one, finds the mailing no longer in the status it left and changes nothing. A campaigner's
send, schedule and approval are in approval.py, on the same helpers.
"""

import logging

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailings.audit import mailing_audit_record
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.selectors import mailing_audience_counts
from mailings.sending import tasks
from mailings.sending.snapshot import delivery_snapshot
from mailings.signals import mailing_sent

logger = logging.getLogger(__name__)

Action = MailingAuditEntry.Action
Status = Mailing.Status

# The statuses a send or a schedule may start from (here and in approval.py).
SENDABLE = [Status.DRAFT, Status.SCHEDULED]


class MailingStateError(Exception):
    """What was asked cannot happen to the mailing now; the message says why, for a campaigner."""


def _mailing_move(mailing: Mailing, *, condition: Q, to: Status, **fields) -> bool:
    """Move a mailing to status `to` if it still meets `condition`, by one conditional UPDATE.

    Return False, changing nothing, when it does not (someone else got there first). On success
    the instance gets the new values too.
    """
    now = timezone.now()
    moved = Mailing.objects.filter(condition, pk=mailing.pk).update(
        status=to, updated_at=now, **fields
    )
    if moved:
        for name, value in {"status": to, "updated_at": now, **fields}.items():
            setattr(mailing, name, value)
    return bool(moved)


def _log_change(mailing_id: int, message: str, *args, **keys) -> None:
    """Log a change of a mailing's status, its id and `keys` bound to the line."""
    with structlog.contextvars.bound_contextvars(mailing_id=mailing_id, **keys):
        logger.info(message, *args)


def _refusal(mailing: Mailing, refused: str) -> MailingStateError:
    """Say, from the status the mailing is in now, why what was asked did not happen."""
    mailing.refresh_from_db(fields=["status", "updated_at"])
    return MailingStateError(f"“{mailing}” {mailing.status_phrase}: {refused}.")


def _mailing_started(*, mailing: Mailing, actor, recipient_count: int) -> None:
    """Record that a send started and queue its snapshot once the change is committed.

    Every path into SENDING ends here, so each send has exactly one SENT entry in the audit log.
    """
    mailing_audit_record(
        mailing=mailing, action=Action.SENT, actor=actor, recipient_count=recipient_count
    )
    _log_change(mailing.pk, "Mailing started sending", recipient_count=recipient_count)
    tasks.mailing_snapshot_task.delay_on_commit(mailing.pk)


def mailing_send(*, mailing: Mailing, actor=None) -> None:
    """Start sending a draft or scheduled mailing now, with no confirmation or approval.

    For beat starting a scheduled send (`actor` None) and the `mailing_send` command; a
    campaigner's send goes through `mailing_send_request`. Safe to call twice: the conditional
    UPDATE lets only the first call through.
    """
    with transaction.atomic():
        if not _mailing_move(
            mailing,
            condition=Q(status__in=SENDABLE),
            to=Status.SENDING,
            started_at=timezone.now(),
            status_reason="",
        ):
            raise _refusal(mailing, "only a draft or scheduled mailing can be sent")
        _mailing_started(
            mailing=mailing, actor=actor, recipient_count=mailing_audience_counts(mailing).count
        )


def mailing_pause(*, mailing_id: int, reason: str = "", actor=None) -> bool:
    """Pause a sending mailing; batches in flight finish, no new batch starts.

    Return False when it was not sending (already paused, finished or cancelled).
    """
    paused = Mailing.objects.filter(pk=mailing_id, status=Mailing.Status.SENDING).update(
        status=Mailing.Status.PAUSED, status_reason=reason[:500], updated_at=timezone.now()
    )
    if paused:
        _audit_by_id(mailing_id, Action.PAUSED, actor=actor, detail=reason)
        _log_change(mailing_id, "Mailing paused: %s", reason or "by a campaigner")
    return bool(paused)


def mailing_resume(*, mailing_id: int, actor=None) -> bool:
    """Resume a paused mailing where it stopped: pending deliveries only, nobody twice."""
    resumed = Mailing.objects.filter(pk=mailing_id, status=Mailing.Status.PAUSED).update(
        status=Mailing.Status.SENDING, status_reason="", updated_at=timezone.now()
    )
    if resumed:
        _audit_by_id(mailing_id, Action.RESUMED, actor=actor)
        _log_change(mailing_id, "Mailing resumed")
        transaction.on_commit(lambda: mailing_start_batches(mailing_id=mailing_id))
    return bool(resumed)


def _audit_by_id(mailing_id: int, action, *, actor=None, detail: str = "") -> None:
    mailing = Mailing.objects.only("pk", "name").get(pk=mailing_id)
    mailing_audit_record(mailing=mailing, action=action, actor=actor, detail=detail)


def mailing_cancel(*, mailing_id: int, actor=None) -> bool:
    """Cancel a mailing that has not finished; what is still pending is never sent."""
    now = timezone.now()
    with transaction.atomic():
        cancelled = Mailing.objects.filter(
            pk=mailing_id,
            status__in=[
                Mailing.Status.DRAFT,
                Mailing.Status.AWAITING_APPROVAL,
                Mailing.Status.SCHEDULED,
                Mailing.Status.SENDING,
                Mailing.Status.WAITING_FOR_WINNER,
                Mailing.Status.PAUSED,
            ],
        ).update(status=Mailing.Status.CANCELLED, finished_at=now, updated_at=now)
        if cancelled:
            # The ledger says why these supporters got nothing.
            Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING).update(
                status=Delivery.Status.CANCELLED, updated_at=now
            )
            _audit_by_id(mailing_id, Action.CANCELLED, actor=actor)
            _log_change(mailing_id, "Mailing cancelled")
    return bool(cancelled)


def mailing_snapshot_and_start(*, mailing_id: int) -> None:
    """Take the audience snapshot of a sending mailing, sending from its first slice on."""
    if not Mailing.objects.filter(pk=mailing_id, status=Mailing.Status.SENDING).exists():
        return
    delivery_snapshot(
        mailing_id=mailing_id, on_first_slice=lambda: mailing_start_batches(mailing_id=mailing_id)
    )
    # An empty audience, or one the chains finished before the snapshot did.
    mailing_finish_if_done(mailing_id=mailing_id)


def mailing_start_batches(*, mailing_id: int) -> None:
    """Queue the batch task chains of a mailing; extra chains find nothing to claim and stop."""
    for _ in range(settings.RALLY_SEND_PARALLELISM):
        tasks.mailing_send_batch_task.delay(mailing_id)


def mailing_finish_if_done(*, mailing_id: int) -> bool:
    """Mark a sending mailing SENT when its snapshot is taken and nothing is pending or claimed.

    An A/B test whose slice is all sent waits for its winner instead (mailings/sending/ab_test.py):
    the rest of the audience is still to come.
    """
    unfinished = Delivery.objects.filter(
        mailing_id=mailing_id, status__in=[Delivery.Status.PENDING, Delivery.Status.CLAIMED]
    )
    if unfinished.exists():
        return False
    now = timezone.now()
    done = Mailing.objects.filter(
        pk=mailing_id, status=Mailing.Status.SENDING, audience_snapshot_at__isnull=False
    )
    testing = Q(ab_status__in=[Mailing.ABStatus.TESTING, Mailing.ABStatus.AWAITING_PICK])
    if done.filter(testing).update(status=Mailing.Status.WAITING_FOR_WINNER, updated_at=now):
        _log_change(mailing_id, "Mailing's test slice sent; waiting for the winner")
        return True
    if done.exclude(testing).update(status=Mailing.Status.SENT, finished_at=now, updated_at=now):
        _log_change(mailing_id, "Mailing sent to everyone")
        mailing_sent.send(sender=Mailing, mailing_id=mailing_id)
        return True
    return False
