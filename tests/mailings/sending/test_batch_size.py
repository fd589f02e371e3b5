"""How many rows a batch claims: the setting, or fewer where a contract rate would let the
claimed rows outlive their lease."""

import pytest
from django.core import mail

from mailings.models import Delivery, Mailing
from mailings.sending import delivery_snapshot, mailing_send_batch
from mailings.sending.batches import send_batch_size
from tests.factories import MailingFactory, SupporterFactory


@pytest.fixture
def lease_of_five_minutes(settings):
    settings.RALLY_SEND_BATCH_SIZE = 500
    settings.RALLY_SEND_LEASE_SECONDS = 300
    settings.RALLY_SEND_PARALLELISM = 8
    return settings


@pytest.mark.parametrize(
    ("rate", "size"),
    [
        (0, 500),  # no contract rate: the setting
        (100, 500),  # 8 batches of 500 take 40 s at 100 a second, within half the lease
        (14, 262),  # an ESP's 14 a second: 8 × 262 messages take 150 s
        (1, 18),
        (0.01, 1),  # however slow the rate, a batch sends something
    ],
)
def test_under_a_contract_rate_every_running_batch_is_sent_within_half_its_lease(
    lease_of_five_minutes, rate, size
):
    settings = lease_of_five_minutes
    settings.RALLY_SEND_RATE_PER_SECOND = rate
    assert send_batch_size() == size
    if rate:
        seconds_for_all_running_batches = size * settings.RALLY_SEND_PARALLELISM / rate
        assert seconds_for_all_running_batches <= settings.RALLY_SEND_LEASE_SECONDS / 2 or size == 1


@pytest.mark.django_db
def test_a_batch_claims_only_what_the_rate_lets_it_send_within_the_lease(lease_of_five_minutes):
    settings = lease_of_five_minutes
    settings.RALLY_SEND_PARALLELISM = 50
    settings.RALLY_SEND_RATE_PER_SECOND = 1  # 1 × 300 / 2 / 50: three rows a batch
    for number in range(7):
        SupporterFactory(email=f"s{number}@example.org")
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    delivery_snapshot(mailing_id=mailing.pk)

    outcome = mailing_send_batch(mailing_id=mailing.pk, worker="w")

    assert outcome.more and len(outcome.sent) == 3 and len(mail.outbox) == 3
    assert Delivery.objects.filter(mailing=mailing, status=Delivery.Status.PENDING).count() == 4
