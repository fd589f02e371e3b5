"""Pause, resume, cancel and schedule, through the services."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import (
    MailingStateError,
    delivery_snapshot,
    mailing_cancel,
    mailing_pause,
    mailing_resume,
    mailing_send_batch,
    mailing_send_request,
    mailing_sweep,
)
from tests.factories import MailingFactory, SupporterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sending(settings):
    settings.RALLY_SEND_BATCH_SIZE = 2
    for number in range(6):
        SupporterFactory(email=f"s{number}@example.org")
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    delivery_snapshot(mailing_id=mailing.pk)
    return mailing


def test_pause_stops_new_batches_and_resume_sends_the_rest_once(
    sending, django_capture_on_commit_callbacks
):
    mailing_send_batch(mailing_id=sending.pk, worker="w")
    assert mailing_pause(mailing_id=sending.pk, reason="Checking a typo")
    assert not mailing_pause(mailing_id=sending.pk)
    assert not mailing_send_batch(mailing_id=sending.pk, worker="w").more
    assert len(mail.outbox) == 2
    sending.refresh_from_db()
    assert (sending.status, sending.status_reason) == (Mailing.Status.PAUSED, "Checking a typo")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert mailing_resume(mailing_id=sending.pk)
    assert len(callbacks) == 1  # the batch chains start once the resume is committed
    assert not mailing_resume(mailing_id=sending.pk)
    while mailing_send_batch(mailing_id=sending.pk, worker="w").more:
        pass
    recipients = [message.to[0] for message in mail.outbox]
    assert sorted(recipients) == [f"s{n}@example.org" for n in range(6)]
    sending.refresh_from_db()
    assert sending.status == Mailing.Status.SENT


def test_cancel_marks_what_was_not_sent_and_sends_no_more(sending):
    mailing_send_batch(mailing_id=sending.pk, worker="w")
    assert mailing_cancel(mailing_id=sending.pk)
    assert not mailing_cancel(mailing_id=sending.pk)
    assert not mailing_send_batch(mailing_id=sending.pk, worker="w").more
    counts = mailing_delivery_counts(sending)
    assert (counts["sent"], counts["cancelled"], counts["pending"]) == (2, 4, 0)
    assert len(mail.outbox) == 2


def test_a_scheduled_mailing_starts_when_its_time_comes(django_capture_on_commit_callbacks):
    SupporterFactory()
    mailing = MailingFactory()
    mailing_send_request(mailing=mailing, actor=None, send_at=timezone.now() + timedelta(hours=1))
    mailing_sweep()
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SCHEDULED

    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        mailing_sweep()
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENDING
    with pytest.raises(MailingStateError, match="already being sent"):
        mailing_send_request(
            mailing=mailing, actor=None, send_at=timezone.now() + timedelta(hours=1)
        )


def test_sweep_leaves_a_live_claim_alone(sending):
    from mailings.sending import delivery_claim_batch

    delivery_claim_batch(mailing_id=sending.pk, worker="alive", size=2)
    mailing_sweep()
    assert Delivery.objects.filter(status=Delivery.Status.CLAIMED).count() == 2
    assert not Delivery.objects.filter(status=Delivery.Status.UNKNOWN).exists()


def test_sweep_requeues_a_snapshot_only_once_it_is_overdue():
    from mailings.sending.backpressure import redis_client

    def queued_snapshots() -> int:
        messages = redis_client().lrange("bulk", 0, -1)
        return sum(b"mailing_snapshot_task" in message for message in messages)

    mailing = MailingFactory(status=Mailing.Status.SENDING, started_at=timezone.now())
    mailing_sweep()
    assert queued_snapshots() == 0  # just started: its snapshot task is under way

    Mailing.objects.filter(pk=mailing.pk).update(started_at=timezone.now() - timedelta(hours=1))
    mailing_sweep()
    assert queued_snapshots() == 1  # Redis lost it: queued again from the database
