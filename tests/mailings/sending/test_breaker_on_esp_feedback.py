"""The breaker that hears the ESP: complaint and hard-bounce rates pause a sending mailing."""

import json
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.redis import redis_client
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.sending import breaker as esp_breaker
from mailings.sending import delivery_snapshot, mailing_resume, mailing_send_batch
from mailings.sending.breaker import (
    esp_feedback_counts,
    mailing_check_esp_feedback,
    mailing_check_esp_feedback_now,
)
from supporters.models import Supporter
from tests.factories import MailingFactory

pytestmark = pytest.mark.django_db

EspStatus = Delivery.EspStatus


@pytest.fixture(autouse=True)
def breaker(settings):
    settings.RALLY_BREAKER_MIN_SAMPLE = 200
    settings.RALLY_BREAKER_COMPLAINT_RATE = 0.003
    settings.RALLY_BREAKER_HARD_BOUNCE_RATE = 0.05
    settings.RALLY_BREAKER_CHECK_SECONDS = 5
    return settings


_made = 0


def add_deliveries(
    mailing, count, *, esp_status="", status=Delivery.Status.SENT, sent_at=None
) -> list[Delivery]:
    """Add `count` deliveries of the mailing to new supporters, sent with that ESP status."""
    global _made
    supporters = Supporter.objects.bulk_create(
        Supporter(email=f"reader{_made + n}@example.org") for n in range(count)
    )
    _made += count
    sent = status == Delivery.Status.SENT
    return Delivery.objects.bulk_create(
        Delivery(
            mailing=mailing,
            supporter=supporter,
            status=status,
            sent_at=(sent_at or timezone.now()) if sent else None,
            esp_status=esp_status,
        )
        for supporter in supporters
    )


def sending_mailing(*, sent: int, complaints: int = 0, hard_bounces: int = 0) -> Mailing:
    mailing = MailingFactory(status=Mailing.Status.SENDING, started_at=timezone.now())
    add_deliveries(mailing, complaints, esp_status=EspStatus.COMPLAINED)
    add_deliveries(mailing, hard_bounces, esp_status=EspStatus.BOUNCED)
    add_deliveries(mailing, sent - complaints - hard_bounces)
    return mailing


def test_complaints_past_the_limit_over_the_sample_pause_the_mailing_saying_why():
    mailing = sending_mailing(sent=2000, complaints=10)

    assert mailing_check_esp_feedback(mailing_id=mailing.pk)

    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.PAUSED
    assert mailing.status_reason == (
        "Paused automatically: 10 of 2,000 sent messages (0.5%) drew spam complaints; the "
        "limit is 0.3%. Check the audience and content before resuming."
    )
    [entry] = MailingAuditEntry.objects.filter(mailing=mailing)
    assert (entry.action, entry.actor, entry.detail) == (
        MailingAuditEntry.Action.PAUSED,
        None,
        mailing.status_reason,
    )
    # Paused already: a later event changes nothing and records nothing.
    assert not mailing_check_esp_feedback_now(mailing_id=mailing.pk)
    assert MailingAuditEntry.objects.filter(mailing=mailing).count() == 1


def test_hard_bounces_past_the_limit_pause_the_mailing_saying_why():
    mailing = sending_mailing(sent=400, hard_bounces=22)

    assert mailing_check_esp_feedback(mailing_id=mailing.pk)

    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.PAUSED
    assert mailing.status_reason.startswith(
        "Paused automatically: 22 of 400 sent messages (5.5%) hard-bounced; the limit is 5%."
    )


def test_a_rate_exactly_at_the_limit_does_not_pause():
    # 0.3% of 2,000 is 6 complaints, 5% of 2,000 is 100 hard bounces: at, not past.
    mailing = sending_mailing(sent=2000, complaints=6, hard_bounces=100)

    assert not mailing_check_esp_feedback(mailing_id=mailing.pk)

    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENDING


def test_a_sample_below_the_minimum_never_pauses_however_bad_its_rate():
    mailing = sending_mailing(sent=199, complaints=50, hard_bounces=50)

    assert not mailing_check_esp_feedback(mailing_id=mailing.pk)

    mailing.refresh_from_db()
    assert (mailing.status, mailing.status_reason) == (Mailing.Status.SENDING, "")


@pytest.mark.parametrize(
    "status",
    [Mailing.Status.SENT, Mailing.Status.PAUSED, Mailing.Status.CANCELLED, Mailing.Status.DRAFT],
)
def test_only_a_sending_mailing_is_paused(status):
    mailing = sending_mailing(sent=1000, complaints=100)
    Mailing.objects.filter(pk=mailing.pk).update(status=status)

    assert not mailing_check_esp_feedback(mailing_id=mailing.pk)

    mailing.refresh_from_db()
    assert (mailing.status, mailing.status_reason) == (status, "")
    assert not MailingAuditEntry.objects.filter(mailing=mailing).exists()


def test_sent_messages_are_counted_only_as_far_as_a_limit_could_still_be_passed():
    healthy = sending_mailing(sent=1500, complaints=1, hard_bounces=5)
    # 1 complaint passes 0.3% below 334 sent; 5 bounces pass 5% below 100: count to 335 at most.
    assert esp_feedback_counts(mailing_id=healthy.pk).sent == 335
    # No trouble, or too little to pass a limit over the minimum sample: no counting at all.
    clean = sending_mailing(sent=300)
    with CaptureQueriesContext(connection) as queries:
        feedback = esp_feedback_counts(mailing_id=clean.pk)
    assert (feedback.sent, feedback.complaints, feedback.hard_bounces) == (0, 0, 0)
    # The last resume and the trouble (from the small partial index); sent rows not at all.
    assert len(queries) == 2
    # Where the limit is passed, the count is exact.
    storm = sending_mailing(sent=700, complaints=20)
    assert esp_feedback_counts(mailing_id=storm.pk).sent == 700


def test_checks_within_the_interval_count_once_and_queue_one_more_check_for_its_end():
    mailing = sending_mailing(sent=1000, complaints=2)

    assert not mailing_check_esp_feedback(mailing_id=mailing.pk)  # counted: under the limit
    add_deliveries(mailing, 20, esp_status=EspStatus.COMPLAINED)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert not mailing_check_esp_feedback(mailing_id=mailing.pk)
    # Each skipped call asks only whether the mailing is still sending.
    assert len(queries) == 5

    queued = [json.loads(message) for message in redis_client().lrange("tracking", 0, -1)]
    assert [message["headers"]["task"] for message in queued] == [
        "mailings.sending.tasks.mailing_check_esp_feedback_task"
    ]
    assert queued[0]["headers"]["eta"] is not None
    # That check, when it runs, sees what the skipped calls did not count.
    assert mailing_check_esp_feedback_now(mailing_id=mailing.pk)


def test_without_redis_every_check_counts(monkeypatch):
    mailing = sending_mailing(sent=1000, complaints=2)
    unreachable = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1)
    monkeypatch.setattr(esp_breaker, "redis_client", lambda: unreachable)

    assert not mailing_check_esp_feedback(mailing_id=mailing.pk)
    add_deliveries(mailing, 20, esp_status=EspStatus.COMPLAINED)
    assert mailing_check_esp_feedback(mailing_id=mailing.pk)


def test_after_a_resume_only_messages_sent_since_can_pause_it_again(breaker):
    breaker.RALLY_BREAKER_CHECK_SECONDS = 0.001
    earlier = timezone.now() - timedelta(minutes=5)
    mailing = MailingFactory(status=Mailing.Status.SENDING, started_at=earlier)
    add_deliveries(mailing, 20, esp_status=EspStatus.COMPLAINED, sent_at=earlier)
    add_deliveries(mailing, 980, sent_at=earlier)
    assert mailing_check_esp_feedback_now(mailing_id=mailing.pk)

    assert mailing_resume(mailing_id=mailing.pk)
    # The complaints that tripped it, and more about messages sent before the pause.
    add_deliveries(mailing, 10, esp_status=EspStatus.COMPLAINED, sent_at=earlier)
    add_deliveries(mailing, 300)
    assert not mailing_check_esp_feedback_now(mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENDING

    # Messages sent since the resume draw complaints past the limit on their own.
    add_deliveries(mailing, 2, esp_status=EspStatus.COMPLAINED)
    assert mailing_check_esp_feedback_now(mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert mailing.status_reason.startswith(
        "Paused automatically: 2 of 302 messages sent since it was resumed (0.7%) drew spam "
        "complaints"
    )
    actions = MailingAuditEntry.objects.filter(mailing=mailing).order_by("created_at", "id")
    assert [entry.action for entry in actions] == ["paused", "resumed", "paused"]


def test_a_batch_that_grows_the_sample_past_the_minimum_trips_on_complaints_already_in(
    breaker, mailoutbox
):
    breaker.RALLY_BREAKER_CHECK_SECONDS = 0.001
    breaker.RALLY_SEND_BATCH_SIZE = 100
    mailing = sending_mailing(sent=150, complaints=3)
    assert not mailing_check_esp_feedback(mailing_id=mailing.pk)  # too small a sample yet
    Supporter.objects.bulk_create(Supporter(email=f"later{n}@example.org") for n in range(100))
    delivery_snapshot(mailing_id=mailing.pk)

    outcome = mailing_send_batch(mailing_id=mailing.pk, worker="w")

    assert len(outcome.sent) == 100 and len(mailoutbox) == 100
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.PAUSED
    assert mailing.status_reason.startswith("Paused automatically: 3 of 250 sent messages (1.2%)")
