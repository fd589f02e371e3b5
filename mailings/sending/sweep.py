"""The periodic sweep: start what is due, recover what crashed workers left behind."""

import contextlib
import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.sending import tasks
from mailings.sending.ab_test import mailing_ab_tests_decide_due
from mailings.sending.control import (
    MailingStateError,
    mailing_finish_if_done,
    mailing_send,
    mailing_start_batches,
)
from supporters.services import supporter_pauses_end

logger = logging.getLogger(__name__)


def mailing_sweep() -> None:
    """Start scheduled mailings; recover what dead workers and a forgetful broker left. By beat.

    - Expired leases become UNKNOWN (the crash policy, in mailings/sending/__init__.py).
    - A sending mailing with no claim for a while gets its snapshot or batch chains queued
      again: Redis may have lost them, and PostgreSQL still knows the work.
    - Supporters whose pause of their mail is over come back into audiences.
    - A/B tests whose slice is sent and whose wait is over are decided.
    """
    now = timezone.now()
    supporter_pauses_end()
    for mailing in Mailing.objects.filter(
        status=Mailing.Status.SCHEDULED, scheduled_at__lte=now
    ).only("pk", "name", "status"):
        # Started or cancelled by someone else meanwhile: nothing to do.
        with contextlib.suppress(MailingStateError):
            mailing_send(mailing=mailing)
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
    for mailing_id, started_at, snapshot_at, heartbeat_at in Mailing.objects.filter(
        status=Mailing.Status.SENDING
    ).values_list("pk", "started_at", "audience_snapshot_at", "heartbeat_at"):
        if snapshot_at is None:
            # A snapshot under way touches the heartbeat after every slice; one that went
            # quiet was lost. Taking it again inserts only what is missing.
            last_sign_of_life = heartbeat_at or started_at
            if last_sign_of_life is None or last_sign_of_life < stalled_before:
                tasks.mailing_snapshot_task.delay(mailing_id)
        elif not mailing_finish_if_done(mailing_id=mailing_id) and (
            heartbeat_at is None or heartbeat_at < stalled_before
        ):
            mailing_start_batches(mailing_id=mailing_id)
    mailing_ab_tests_decide_due()
