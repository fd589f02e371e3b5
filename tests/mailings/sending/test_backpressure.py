"""The Redis rate limiter and circuit breaker, against real Redis."""

import time
import uuid

import pytest

from mailings.models import Mailing
from mailings.sending import delivery_snapshot, mailing_send_batch
from mailings.sending.backpressure import (
    SendRateLimiter,
    breaker_failure_rate,
    breaker_record,
    redis_client,
)
from tests.factories import MailingFactory, SupporterFactory


def test_rate_limiter_holds_the_rate_across_limiters_sharing_a_key():
    key = f"rally:rate:test:{uuid.uuid4()}"
    # Two limiters stand for two workers sharing one ESP account.
    limiters = [SendRateLimiter(200, key=key), SendRateLimiter(200, key=key)]
    sent = 0
    started = time.monotonic()
    while sent < 400:
        sent += limiters[sent % 2].acquire(10)
    elapsed = time.monotonic() - started
    redis_client().delete(key)
    # 400 messages at 200/s with a 20-message burst: about 1.9 s, never much less.
    assert 1.7 <= elapsed <= 2.3, elapsed


def test_breaker_counts_attempts_and_failures_per_mailing():
    mailing_id = int(uuid.uuid4().int % 10**9)
    breaker_record(mailing_id=mailing_id, attempts=10, failures=4)
    breaker_record(mailing_id=mailing_id, attempts=10, failures=6)
    assert breaker_failure_rate(mailing_id=mailing_id) == (20, 0.5)
    assert breaker_failure_rate(mailing_id=mailing_id + 1) == (0, 0.0)


@pytest.mark.django_db
def test_a_failing_esp_trips_the_breaker_and_the_mailing_says_why(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: refused
    settings.RALLY_BREAKER_MIN_ATTEMPTS = 4
    for number in range(3):
        SupporterFactory(email=f"s{number}@example.org")
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    delivery_snapshot(mailing_id=mailing.pk)
    outcome = mailing_send_batch(mailing_id=mailing.pk, worker="w")
    assert outcome.retry_after is not None
    assert len(outcome.released) == 3
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.PAUSED
    # Three messages, each tried once and retried INLINE_RETRIES (3) times.
    assert mailing.status_reason.startswith("Paused automatically: 100% of 12 send attempts")
    assert "Connection refused" in mailing.status_reason
