"""The progress of a mailing's send, as the progress page and progress.json report it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_progress
from tests.factories import MailingFactory, SupporterFactory

Status = Delivery.Status


def add_deliveries(mailing, status: str, count: int, *, sent_ago: timedelta | None = None):
    """Add `count` deliveries in `status` to the ledger, sent `sent_ago` before now if given."""
    sent_at = timezone.now() - sent_ago if sent_ago is not None else None
    Delivery.objects.bulk_create(
        Delivery(mailing=mailing, supporter=SupporterFactory(), status=status, sent_at=sent_at)
        for _ in range(count)
    )


@pytest.fixture
def sending():
    return MailingFactory(status=Mailing.Status.SENDING, audience_snapshot_at=timezone.now())


# The figures


@pytest.mark.django_db
def test_the_figures_of_a_hand_made_ledger(sending):
    add_deliveries(sending, Status.SENT, 2, sent_ago=timedelta(seconds=5))
    add_deliveries(sending, Status.SENT, 4, sent_ago=timedelta(seconds=40))
    add_deliveries(sending, Status.SENT, 3, sent_ago=timedelta(seconds=90))
    add_deliveries(sending, Status.SENT, 1, sent_ago=timedelta(hours=1))
    add_deliveries(sending, Status.FAILED, 2)
    add_deliveries(sending, Status.SKIPPED, 3)
    add_deliveries(sending, Status.CANCELLED, 1)
    add_deliveries(sending, Status.UNKNOWN, 1)
    add_deliveries(sending, Status.PENDING, 5)
    add_deliveries(sending, Status.CLAIMED, 2)
    add_deliveries(MailingFactory(), Status.SENT, 2, sent_ago=timedelta(seconds=5))

    progress = mailing_progress(sending)

    assert (progress.status, progress.total) == ("sending", 24)
    assert (progress.sent, progress.failed, progress.skipped) == (10, 2, 3)
    assert (progress.cancelled, progress.unknown, progress.pending) == (1, 1, 7)
    assert progress.rate_per_s == 0.1  # 6 sent in the last minute, of this mailing
    assert progress.eta_seconds == 70  # 7 pending at 0.1 a second
    assert progress.done == 17


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sent_last_minute", "pending", "rate_per_s", "eta_seconds"),
    [
        (0, 5, 0.0, None),  # nothing sent lately: no ETA
        (2, 5, 0.0, None),  # 0.033… a second rounds to 0: still none
        (3, 5, 0.1, 50),  # 0.05 rounds half up
        (42, 21, 0.7, 30),  # 30 exactly, where float division gives 30.000…04
        (90, 7, 1.5, 5),  # 4.67 s rounds up
        (12, 0, 0.2, None),  # nothing pending: no ETA
    ],
)
def test_rate_and_eta(sending, sent_last_minute, pending, rate_per_s, eta_seconds):
    add_deliveries(sending, Status.SENT, sent_last_minute, sent_ago=timedelta(seconds=10))
    add_deliveries(sending, Status.SENT, 30, sent_ago=timedelta(minutes=5))
    add_deliveries(sending, Status.PENDING, pending)

    progress = mailing_progress(sending)

    assert (progress.rate_per_s, progress.eta_seconds) == (rate_per_s, eta_seconds)


@pytest.mark.django_db
def test_a_mailing_without_deliveries_has_zero_everywhere_and_no_eta():
    progress = mailing_progress(MailingFactory())
    assert (progress.total, progress.pending, progress.rate_per_s) == (0, 0, 0.0)
    assert progress.eta_seconds is None
