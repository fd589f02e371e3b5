"""The sunset flow: after a re-permission mailing, take its silent recipients off the list.

A mailing whose purpose is REPERMISSION asks dormant supporters (supporters/engagement.py)
whether they still want mail; its audience is the dormant tier (mailings/selectors.py). Its
recipients then have RALLY_SUNSET_GRACE_DAYS from when it finished sending to engage: open it,
click in it, or sign anything. Beat runs mailings_apply_due_sunsets; once a mailing's grace is
over, every recipient it was sent to who has not engaged since their message was sent, and is
still subscribed, gets the status SUNSET with the reason "sunset", and the signal
supporters.signals.supporters_sunset names them. A fresh signature of their own with consent
brings them back (supporters.services.CONSENT_LIFTS).

Once per mailing: Mailing.sunset_applied_at is set by a conditional UPDATE in the transaction
that suppresses, so two runs at once (two beats, a task redelivered) suppress once. Silence is
read from the Engagement rows the workers keep (last_engaged_at after the delivery's sent_at),
never from a scan of opens and signatures.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from mailings.audit import mailing_audit_record
from mailings.models import Delivery, Mailing, MailingAuditEntry
from supporters.models import Engagement, Supporter
from supporters.signals import supporters_sunset

logger = logging.getLogger(__name__)

# Supporter.suppression_reason of those the sunset took off the list.
SUNSET_REASON = "sunset"


def _grace() -> timedelta:
    return timedelta(days=settings.RALLY_SUNSET_GRACE_DAYS)


def _due(now: datetime):
    """Return the re-permission mailings whose grace is over and whose sunset is not applied."""
    return Mailing.objects.filter(
        purpose=Mailing.Purpose.REPERMISSION,
        status=Mailing.Status.SENT,
        finished_at__lte=now - _grace(),
        sunset_applied_at__isnull=True,
    )


def mailings_apply_due_sunsets() -> dict[int, int]:
    """Apply the sunset of every re-permission mailing whose grace is over. By beat.

    Return {mailing id: supporters suppressed} for the mailings this run applied.
    """
    applied = {}
    for mailing_id in _due(timezone.now()).order_by("pk").values_list("pk", flat=True):
        suppressed = mailing_apply_sunset(mailing_id=mailing_id)
        if suppressed is not None:
            applied[mailing_id] = suppressed
    return applied


def mailing_apply_sunset(*, mailing_id: int) -> int | None:
    """Suppress a re-permission mailing's silent recipients; return how many, None if not due.

    Not due: not a re-permission mailing, not sent, its grace not over, or applied already.
    One conditional UPDATE claims the mailing, one UPDATE suppresses, and the audit log
    records how many, all in one transaction.
    """
    now = timezone.now()
    with transaction.atomic():
        if not _due(now).filter(pk=mailing_id).update(sunset_applied_at=now):
            return None
        supporter_ids = _suppress_silent_recipients(mailing_id, now=now)
        suppressed = len(supporter_ids)
        if supporter_ids:
            supporters_sunset.send(
                sender=Supporter, supporter_ids=supporter_ids, mailing_id=mailing_id, at=now
            )
        mailing = Mailing.objects.get(pk=mailing_id)
        mailing_audit_record(
            mailing=mailing,
            action=MailingAuditEntry.Action.SUNSET,
            recipient_count=suppressed,
            detail=(
                f"{suppressed} recipients who had not opened, clicked or signed within "
                f"{settings.RALLY_SUNSET_GRACE_DAYS} days were suppressed (sunset)."
            ),
        )
    logger.info(
        "Sunset applied: %s silent recipients suppressed",
        suppressed,
        extra={"mailing_id": mailing_id},
    )
    return suppressed


def _suppress_silent_recipients(mailing_id: int, *, now: datetime) -> list[int]:
    """Give the silent subscribed recipients the status SUNSET; return their ids.

    One UPDATE … RETURNING (PostgreSQL and SQLite alike), which Django's update() cannot
    express: the ids are for the `supporters_sunset` signal's receivers.
    """
    silent_sql, silent_params = (
        _silent_subscribed_recipients(mailing_id).values("pk").query.sql_with_params()
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Supporter._meta.db_table)} "  # noqa: S608
            "SET status = %s, suppressed_at = %s, suppression_reason = %s, updated_at = %s "
            f"WHERE id IN ({silent_sql}) RETURNING id",
            [Supporter.Status.SUNSET, adapt(now), SUNSET_REASON, adapt(now), *silent_params],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _silent_subscribed_recipients(mailing_id: int):
    """Return the subscribed supporters the mailing was sent to who have not engaged since.

    Driven by the mailing's deliveries (the (mailing, supporter) index), each probing its
    supporter's Engagement row by its primary key: no scan of the supporter table.
    """
    engaged_since_sent = Engagement.objects.filter(
        supporter_id=OuterRef("supporter_id"), last_engaged_at__gt=OuterRef("sent_at")
    )
    silent = Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.SENT).filter(
        ~Exists(engaged_since_sent)
    )
    return Supporter.objects.filter(
        pk__in=silent.values("supporter_id"), status=Supporter.Status.SUBSCRIBED
    )


@dataclass(frozen=True)
class SunsetSummary:
    """What a mailing's report says of its sunset: when it is due or was applied, and how many."""

    due_at: datetime | None
    applied_at: datetime | None
    suppressed: int | None


def mailing_sunset_summary(mailing: Mailing) -> SunsetSummary | None:
    """Return the sunset line of a re-permission mailing's report; None for any other mailing.

    The count is the audit log's, as it was when applied: those who came back since by signing
    are still counted, as the sunset took them off the list.
    """
    if mailing.purpose != Mailing.Purpose.REPERMISSION:
        return None
    due_at = mailing.finished_at + _grace() if mailing.finished_at else None
    if mailing.sunset_applied_at is None:
        return SunsetSummary(due_at=due_at, applied_at=None, suppressed=None)
    entry = (
        MailingAuditEntry.objects.filter(mailing=mailing, action=MailingAuditEntry.Action.SUNSET)
        .order_by("-created_at")
        .first()
    )
    return SunsetSummary(
        due_at=due_at,
        applied_at=mailing.sunset_applied_at,
        suppressed=entry.recipient_count if entry else None,
    )
