"""A campaigner's send: asked for with its count confirmed, approved by a second campaigner above
RALLY_APPROVAL_THRESHOLD recipients, or withdrawn.

Each is a conditional UPDATE like every transition in control.py, and so is safe to call twice
or twice at once; the confirmation pages (mailings/admin_views/send.py) add the count and the
version of the mailing the campaigner saw, so a second POST of a page finds nothing to do.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailings.audit import mailing_audit_record
from mailings.models import Mailing, MailingAuditEntry
from mailings.selectors import mailing_audience_counts
from mailings.sending.campaigner_time import moment_text
from mailings.sending.control import (
    SENDABLE,
    MailingStateError,
    _mailing_move,
    _mailing_started,
    _refusal,
)

Action = MailingAuditEntry.Action
Status = Mailing.Status


@dataclass(frozen=True)
class SendRequestOutcome:
    """What a send request did: the mailing's new status and the count it was made for."""

    status: Status
    recipient_count: int


def _unchanged_since(confirmed_updated_at: datetime | None) -> Q:
    """Match the mailing only as the campaigner confirmed it, when the page said which that was.

    A second POST of the same confirmation page carries the version the first one changed, so
    it matches nothing: a double click acts once even when the first click moved the mailing
    to a status the second would also start from (scheduled, say).
    """
    return Q() if confirmed_updated_at is None else Q(updated_at=confirmed_updated_at)


def _audience_count_checked(mailing: Mailing, confirmed_count: int | None) -> int:
    """Count the audience; refuse an empty one, and one that is not the size confirmed."""
    # The count the confirmation page showed, by the same selector (its fast path too).
    count = mailing_audience_counts(mailing).count
    if count == 0:
        raise MailingStateError(
            f"“{mailing}” would reach nobody: no subscribed supporter matches its audience. "
            "Change the audience first."
        )
    if confirmed_count is not None and confirmed_count != count:
        raise MailingStateError(
            f"The audience of “{mailing}” changed: it is {count:,} now, not {confirmed_count:,}. "
            "Check the new count and confirm again."
        )
    return count


def mailing_send_request(
    *,
    mailing: Mailing,
    actor,
    send_at: datetime | None = None,
    confirmed_count: int | None = None,
    confirmed_updated_at: datetime | None = None,
) -> SendRequestOutcome:
    """Send a draft or scheduled mailing now, or at `send_at`, as a campaigner asked.

    Above RALLY_APPROVAL_THRESHOLD recipients it waits instead, AWAITING_APPROVAL, until another
    campaigner approves (`mailing_approve`). Refused with MailingStateError, changing nothing: a
    mailing not in a status to send from, or changed since `confirmed_updated_at`; an empty
    audience; one whose size is not `confirmed_count`; a time that has passed. A new time for a
    scheduled mailing is a new request, approved again if need be.
    """
    now = timezone.now()
    mailing.refresh_from_db(fields=["status", "updated_at"])
    if mailing.status not in SENDABLE:
        raise _refusal(mailing, "only a draft or scheduled mailing can be sent")
    if send_at is not None and send_at <= now:
        raise MailingStateError("That time has passed; choose a later one.")
    count = _audience_count_checked(mailing, confirmed_count)
    if count > settings.RALLY_APPROVAL_THRESHOLD:
        to, fields = Status.AWAITING_APPROVAL, {"scheduled_at": send_at}
        action = Action.SEND_REQUESTED
        detail = f"more than {settings.RALLY_APPROVAL_THRESHOLD:,} recipients: needs approval"
        if send_at is not None:
            detail += f"; for {moment_text(send_at)}"
    elif send_at is not None:
        to, fields = Status.SCHEDULED, {"scheduled_at": send_at}
        action, detail = Action.SCHEDULED, f"for {moment_text(send_at)}"
    else:
        to, fields = Status.SENDING, {"started_at": now, "status_reason": ""}
        action, detail = Action.SENT, ""
    with transaction.atomic():
        if not _mailing_move(
            mailing,
            condition=Q(status__in=SENDABLE) & _unchanged_since(confirmed_updated_at),
            to=to,
            send_requested_by=actor,
            approved_by=None,
            approved_at=None,
            **fields,
        ):
            raise _changed_meanwhile(
                mailing, SENDABLE, "only a draft or scheduled mailing can be sent"
            )
        if to == Status.SENDING:
            _mailing_started(mailing=mailing, actor=actor, recipient_count=count)
        else:
            mailing_audit_record(
                mailing=mailing, action=action, actor=actor, recipient_count=count, detail=detail
            )
    return SendRequestOutcome(status=to, recipient_count=count)


def _changed_meanwhile(mailing: Mailing, statuses, refused: str) -> MailingStateError:
    """Explain a conditional UPDATE that found nothing: a new status, or a newer version."""
    error = _refusal(mailing, refused)
    if mailing.status in statuses:
        return MailingStateError(
            f"“{mailing}” was changed after you confirmed; check it and confirm again."
        )
    return error


def mailing_approve(
    *,
    mailing: Mailing,
    actor,
    confirmed_count: int | None = None,
    confirmed_updated_at: datetime | None = None,
) -> SendRequestOutcome:
    """Approve another campaigner's send that awaits approval: it starts, or waits for its time.

    The campaigner who asked for the send may not approve it. It goes now if it was asked for
    now or its time has passed, else it is SCHEDULED and beat starts it. Refused, changing
    nothing, like `mailing_send_request` (an empty audience, one of another size than
    `confirmed_count`, a mailing changed since `confirmed_updated_at`).
    """
    mailing.refresh_from_db(fields=["status", "updated_at", "scheduled_at", "send_requested_by"])
    if mailing.status != Status.AWAITING_APPROVAL:
        raise _refusal(mailing, "only a send awaiting approval can be approved")
    if mailing.send_requested_by_id == actor.pk:
        raise MailingStateError("You asked for this send; another campaigner must approve it.")
    count = _audience_count_checked(mailing, confirmed_count)
    now = timezone.now()
    send_at = mailing.scheduled_at
    later = send_at is not None and send_at > now
    condition = (
        Q(status=Status.AWAITING_APPROVAL, scheduled_at=send_at)
        & ~Q(send_requested_by=actor)
        & _unchanged_since(confirmed_updated_at)
    )
    if later:
        to, fields = Status.SCHEDULED, {}
    else:
        to, fields = Status.SENDING, {"started_at": now, "status_reason": ""}
    with transaction.atomic():
        if not _mailing_move(
            mailing, condition=condition, to=to, approved_by=actor, approved_at=now, **fields
        ):
            raise _changed_meanwhile(
                mailing, [Status.AWAITING_APPROVAL], "only a send awaiting approval can be approved"
            )
        mailing_audit_record(
            mailing=mailing,
            action=Action.APPROVED,
            actor=actor,
            recipient_count=count,
            detail=f"for {moment_text(send_at)}" if later else "to send now",
        )
        if to == Status.SENDING:
            _mailing_started(mailing=mailing, actor=actor, recipient_count=count)
    return SendRequestOutcome(status=to, recipient_count=count)


def mailing_unschedule(*, mailing: Mailing, actor) -> None:
    """Take a scheduled mailing, or a send awaiting approval, back to a draft.

    Its time, its request and any approval are cleared: sending it again is a new request.
    """
    mailing.refresh_from_db(fields=["status", "scheduled_at"])
    was, send_at = mailing.status, mailing.scheduled_at
    with transaction.atomic():
        # Only from the status and time just read, so that the audit entry says what was undone.
        if was not in (Status.SCHEDULED, Status.AWAITING_APPROVAL) or not _mailing_move(
            mailing,
            condition=Q(status=was, scheduled_at=send_at),
            to=Status.DRAFT,
            scheduled_at=None,
            send_requested_by=None,
            approved_by=None,
            approved_at=None,
        ):
            raise _refusal(
                mailing, "only a scheduled mailing or a send awaiting approval can be unscheduled"
            )
        if was == Status.AWAITING_APPROVAL:
            detail = "withdrawn before approval"
        else:
            detail = f"was to go at {moment_text(send_at)}" if send_at else ""
        mailing_audit_record(mailing=mailing, action=Action.UNSCHEDULED, actor=actor, detail=detail)
