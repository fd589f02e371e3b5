"""The frequency cap at claim, as services: what counts towards a cap and what a claim does with
a supporter over one. The same promises with real workers are in
test_list_protection_with_workers.py.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.sending.batches import BatchOutcome, delivery_claim_batch, delivery_record_outcome
from mailings.sending.frequency_cap import (
    frequency_cap_may_apply,
    supporters_over_frequency_cap,
)
from tests.factories import DeliveryFactory, MailingFactory, SupporterFactory

Status = Delivery.Status
SkipReason = Delivery.SkipReason

pytestmark = pytest.mark.django_db


def had(supporter, *, ago: timedelta, status: str = Status.SENT, mailing=None) -> Delivery:
    """Record a delivery of another mailing to `supporter`, `ago` before now.

    Its mailing beat when it was claimed, as the send queue's claim makes it.
    """
    sent = status == Status.SENT
    mailing = mailing or MailingFactory()
    beat_at = timezone.now() - (ago if sent else timedelta(0))
    if mailing.heartbeat_at is None or mailing.heartbeat_at < beat_at:
        Mailing.objects.filter(pk=mailing.pk).update(heartbeat_at=beat_at)
    return DeliveryFactory(
        supporter=supporter,
        mailing=mailing,
        status=status,
        sent_at=timezone.now() - ago if sent else None,
        esp_message_id=f"esp-{supporter.pk}-{ago}" if sent else "",
    )


def pending(mailing, supporter) -> Delivery:
    return DeliveryFactory(
        mailing=mailing, supporter=supporter, status=Status.PENDING, sent_at=None, esp_message_id=""
    )


def over_cap(mailing, *supporters) -> dict[int, str]:
    return supporters_over_frequency_cap(
        mailing_id=mailing.pk, supporter_ids=[s.pk for s in supporters], now=timezone.now()
    )


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=2, RALLY_FREQUENCY_CAP_PER_WEEK=5)
def test_two_sent_in_the_last_24_hours_reach_the_daily_cap_and_one_does_not():
    mailing = MailingFactory()
    two_today, one_today, two_yesterday = SupporterFactory.create_batch(3)
    had(two_today, ago=timedelta(hours=1))
    had(two_today, ago=timedelta(hours=23))
    had(one_today, ago=timedelta(hours=2))
    had(two_yesterday, ago=timedelta(hours=25))
    had(two_yesterday, ago=timedelta(hours=30))

    assert over_cap(mailing, two_today, one_today, two_yesterday) == {
        two_today.pk: SkipReason.FREQUENCY_CAP_DAY
    }


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=2, RALLY_FREQUENCY_CAP_PER_WEEK=5)
def test_five_in_the_last_seven_days_reach_the_weekly_cap_and_older_ones_do_not_count():
    mailing = MailingFactory()
    five_this_week, four_this_week_and_one_before = SupporterFactory.create_batch(2)
    for days in (1.5, 2, 3, 5, 6.9):
        had(five_this_week, ago=timedelta(days=days))
    for days in (1.5, 2, 3, 5, 7.1):
        had(four_this_week_and_one_before, ago=timedelta(days=days))

    assert over_cap(mailing, five_this_week, four_this_week_and_one_before) == {
        five_this_week.pk: SkipReason.FREQUENCY_CAP_WEEK
    }


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=2, RALLY_FREQUENCY_CAP_PER_WEEK=5)
def test_at_both_caps_the_reason_is_the_daily_one():
    supporter = SupporterFactory()
    for hours in (1, 2, 30, 50, 70):
        had(supporter, ago=timedelta(hours=hours))

    assert over_cap(MailingFactory(), supporter) == {supporter.pk: SkipReason.FREQUENCY_CAP_DAY}


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=0)
def test_only_deliveries_sent_or_on_their_way_count():
    mailing = MailingFactory()
    failed, skipped, pending, cancelled, unknown, claimed = SupporterFactory.create_batch(6)
    had(failed, ago=timedelta(hours=1), status=Status.FAILED)
    had(skipped, ago=timedelta(hours=1), status=Status.SKIPPED)
    had(pending, ago=timedelta(hours=1), status=Status.PENDING)
    had(cancelled, ago=timedelta(hours=1), status=Status.CANCELLED)
    had(unknown, ago=timedelta(hours=1), status=Status.UNKNOWN)
    # Claimed by a worker of another mailing right now: it goes out any moment.
    had(claimed, ago=timedelta(0), status=Status.CLAIMED)

    assert over_cap(mailing, failed, skipped, pending, cancelled, unknown, claimed) == {
        claimed.pk: SkipReason.FREQUENCY_CAP_DAY
    }


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=1)
def test_the_mailing_being_sent_does_not_count_against_itself():
    mailing = MailingFactory()
    supporter = SupporterFactory()
    had(supporter, ago=timedelta(hours=1), mailing=mailing)

    assert over_cap(mailing, supporter) == {}


@pytest.mark.parametrize(
    ("per_day", "per_week", "expected"),
    [
        (0, 0, {}),
        # Three in the last hours are three in the last week, too.
        (0, 3, {"day", "week"}),
        (3, 0, {"day"}),
    ],
)
def test_a_cap_of_0_is_off(settings, per_day, per_week, expected):
    settings.RALLY_FREQUENCY_CAP_PER_DAY = per_day
    settings.RALLY_FREQUENCY_CAP_PER_WEEK = per_week
    mailing = MailingFactory()
    three_today, three_this_week = SupporterFactory.create_batch(2)
    for hours in (1, 2, 3):
        had(three_today, ago=timedelta(hours=hours))
    for days in (2, 3, 4):
        had(three_this_week, ago=timedelta(days=days))

    reasons = over_cap(mailing, three_today, three_this_week)

    names = {"day": three_today.pk, "week": three_this_week.pk}
    assert set(reasons) == {names[name] for name in expected}


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=0)
def test_a_claim_skips_those_over_the_cap_and_claims_the_rest():
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    capped, free = SupporterFactory.create_batch(2)
    had(capped, ago=timedelta(hours=3))
    capped_row = pending(mailing, capped)
    free_row = pending(mailing, free)

    claimed = delivery_claim_batch(mailing_id=mailing.pk, worker="w1", size=10)

    assert [row.delivery_id for row in claimed] == [free_row.pk]
    capped_row.refresh_from_db()
    assert (capped_row.status, capped_row.skip_reason) == (
        Status.SKIPPED,
        SkipReason.FREQUENCY_CAP_DAY,
    )
    assert capped_row.sent_at is None


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=5)
def test_no_supporter_is_asked_about_when_no_other_mailing_beat_in_the_last_week():
    """Claims ask about their supporters only while another mailing can have sent to them."""
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    supporter = SupporterFactory()
    old = had(supporter, ago=timedelta(days=8))
    pending(mailing, supporter)
    now = timezone.now()
    assert not frequency_cap_may_apply(mailing_id=mailing.pk, now=now)
    with CaptureQueriesContext(connection) as queries:
        assert len(delivery_claim_batch(mailing_id=mailing.pk, worker="w1", size=10)) == 1
    assert not any("COUNT" in query["sql"] for query in queries.captured_queries)
    # A claim of the other mailing, a week ago less a lease, still counts.
    Mailing.objects.filter(pk=old.mailing_id).update(
        heartbeat_at=now - timedelta(days=7, seconds=settings.RALLY_SEND_LEASE_SECONDS - 5)
    )
    assert frequency_cap_may_apply(mailing_id=mailing.pk, now=now)
    # Its own heartbeat never does.
    Mailing.objects.filter(pk=old.mailing_id).update(heartbeat_at=None)
    Mailing.objects.filter(pk=mailing.pk).update(heartbeat_at=now)
    assert not frequency_cap_may_apply(mailing_id=mailing.pk, now=now)


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=0)
def test_a_batch_all_over_the_cap_is_skipped_and_the_next_batch_claimed():
    """An empty claim means nothing is left: the batch chain stops on it."""
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    capped = SupporterFactory.create_batch(3)
    for supporter in capped:
        had(supporter, ago=timedelta(hours=1))
        pending(mailing, supporter)
    free_row = pending(mailing, SupporterFactory())

    claimed = delivery_claim_batch(mailing_id=mailing.pk, worker="w1", size=2)

    assert [row.delivery_id for row in claimed] == [free_row.pk]
    skipped = Delivery.objects.filter(mailing=mailing, status=Status.SKIPPED)
    assert skipped.count() == 3
    assert delivery_claim_batch(mailing_id=mailing.pk, worker="w1", size=2) == []


def test_a_delivery_no_longer_mailable_when_sent_is_skipped_with_that_reason():
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    row = pending(mailing, SupporterFactory())
    Delivery.objects.filter(pk=row.pk).update(status=Status.CLAIMED)

    delivery_record_outcome(BatchOutcome(skipped=[row.pk]))

    row.refresh_from_db()
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.NOT_MAILABLE)


def test_the_progress_page_says_why_deliveries_were_skipped(admin_client):
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    reasons = [SkipReason.FREQUENCY_CAP_DAY] * 2 + [SkipReason.NOT_MAILABLE]
    for reason in reasons:
        row = pending(mailing, SupporterFactory())
        Delivery.objects.filter(pk=row.pk).update(status=Status.SKIPPED, skip_reason=reason)

    page = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/progress/?refresh=off")

    assert page.status_code == 200
    html = page.content.decode()
    assert (
        '<span class="skip-reasons" id="skip-reasons">'
        "(2 over the daily frequency cap, 1 no longer subscribed)</span>"
    ) in html
    assert '<td class="number" id="count-skipped">3</td>' in html
