"""The frequency cap with real parts: Celery worker processes given the cap in their
environment, the test database and Redis, and a fake Postmark whose record of what it accepted
proves who received what.
"""

from collections import Counter
from datetime import timedelta

from django.utils import timezone

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.sending import mailing_send
from mailings.sending.test_send import mailing_test_send
from supporters.models import Supporter
from tests.factories import DeliveryFactory, MailingFactory, SupporterFactory, TagFactory
from tests.processes import wait_for
from tests.sending_helpers import make_audience, postmark_env, wait_until_finished

Status = Delivery.Status
SkipReason = Delivery.SkipReason

# Rally's defaults (config/settings/base.py), given to the workers: the test settings turn the
# cap off for every other test.
CAPS = {"RALLY_FREQUENCY_CAP_PER_DAY": 2, "RALLY_FREQUENCY_CAP_PER_WEEK": 5}


def received(esp) -> Counter:
    """Count the bulk messages the fake ESP accepted, by (recipient, mailing id).

    A test copy carries its mailing's id too, and says it is one (sending/test_send.py).
    """
    return Counter(
        (message["recipient"], int(message["metadata"]["mailing_id"]))
        for message in esp.messages()
        if not message["metadata"].get("test_copy")
    )


def mailing_to(*supporters) -> Mailing:
    """Return a draft mailing whose audience is exactly `supporters` (by a tag of their own)."""
    tag = TagFactory()
    for supporter in supporters:
        supporter.tags.add(tag)
    mailing = MailingFactory()
    mailing.audience_include_tags.add(tag)
    return mailing


def skip_reasons(mailing) -> dict[str, str]:
    """Return each skipped delivery's reason, by supporter email."""
    return dict(
        Delivery.objects.filter(mailing=mailing, status=Status.SKIPPED).values_list(
            "supporter__email", "skip_reason"
        )
    )


def send_and_wait(mailing, worker) -> None:
    mailing_send(mailing=mailing)
    wait_until_finished(mailing, [worker])
    assert mailing.status == Mailing.Status.SENT, mailing.status_reason


def test_a_supporter_sent_two_mailings_today_is_skipped_with_the_daily_cap_and_gets_nothing(
    celery_worker_factory,
):
    twice, once, new = (SupporterFactory(email=f"{name}@example.org") for name in
                        ("twice", "once", "new"))  # fmt: skip
    first, second, third = mailing_to(twice, once), mailing_to(twice), mailing_to(twice, once, new)
    with FakePostmark() as esp:
        worker = celery_worker_factory(**postmark_env(esp, **CAPS))
        for mailing in (first, second, third):
            send_and_wait(mailing, worker)
        got = received(esp)

    assert got == {
        ("twice@example.org", first.pk): 1,
        ("twice@example.org", second.pk): 1,
        ("once@example.org", first.pk): 1,
        ("once@example.org", third.pk): 1,
        ("new@example.org", third.pk): 1,
    }
    assert skip_reasons(third) == {"twice@example.org": SkipReason.FREQUENCY_CAP_DAY}
    skipped = Delivery.objects.get(mailing=third, supporter=twice)
    assert skipped.sent_at is None and skipped.esp_message_id == ""


def test_a_supporter_sent_five_mailings_this_week_is_skipped_with_the_weekly_cap(
    celery_worker_factory,
):
    five, four, fresh = (SupporterFactory(email=f"{name}@example.org") for name in
                         ("five", "four", "fresh"))  # fmt: skip
    now = timezone.now()
    # The ledger of earlier days: five mailings this week, one a day; four, and one before.
    # Each mailing beat when it was sent, as the send queue's claims make it.
    for supporter, days_ago in (
        (five, (1.5, 2.5, 3.5, 4.5, 5.5)),
        (four, (1.5, 2.5, 3.5, 4.5, 7.5)),
    ):
        for days in days_ago:
            sent_at = now - timedelta(days=days)
            DeliveryFactory(
                supporter=supporter, sent_at=sent_at, mailing=MailingFactory(heartbeat_at=sent_at)
            )
    appeal = mailing_to(five, four, fresh)
    with FakePostmark() as esp:
        worker = celery_worker_factory(**postmark_env(esp, **CAPS))
        send_and_wait(appeal, worker)
        got = received(esp)

    assert got == {("four@example.org", appeal.pk): 1, ("fresh@example.org", appeal.pk): 1}
    assert skip_reasons(appeal) == {"five@example.org": SkipReason.FREQUENCY_CAP_WEEK}


def test_test_copies_are_not_bulk_mail_and_do_not_count_towards_the_cap(
    celery_worker_factory, admin_user
):
    tester = SupporterFactory(email="tester@example.org")
    appeal = mailing_to(tester)
    with FakePostmark() as esp:
        worker = celery_worker_factory(
            **postmark_env(esp, RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=1)
        )
        for _ in range(2):
            mailing_test_send(
                mailing=appeal, addresses=tester.email, supporter=tester, actor=admin_user
            )
        wait_for(lambda: len(esp.messages()) == 2, timeout=60, message=worker.log)
        send_and_wait(appeal, worker)
        got = received(esp)
        subjects = [message["subject"] for message in esp.messages()]

    assert got == {("tester@example.org", appeal.pk): 1}
    assert sum(subject.startswith("[TEST] ") for subject in subjects) == 2
    assert skip_reasons(appeal) == {}


def test_two_mailings_sent_at_once_give_nobody_more_than_the_daily_cap(celery_worker_factory):
    """Both mailings claim the same supporters side by side: a claim counts the other's claims
    still on their way, and claims of two mailings take turns, so nobody gets both."""
    emails = make_audience(400)
    everyone = Supporter.objects.filter(email__in=emails)
    first, second = mailing_to(*everyone), mailing_to(*everyone)
    with FakePostmark(record_bodies=False) as esp:
        # Small batches at a pace that keeps each claimed for a while before it is sent: the
        # time in which the other mailing's claims must see it.
        env = postmark_env(
            esp, RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=0,
            RALLY_SEND_BATCH_SIZE=10, RALLY_SEND_RATE_PER_SECOND=200,
        )  # fmt: skip
        workers = [celery_worker_factory(**env), celery_worker_factory(**env)]
        mailing_send(mailing=first)
        mailing_send(mailing=second)
        wait_until_finished(first, workers)
        wait_until_finished(second, workers)
        counts = esp.counts()
        got = received(esp)

    assert counts == dict.fromkeys(emails, 1), "somebody got both mailings, or neither"
    # Both mailings went out, each to some: they really did claim side by side.
    assert {mailing_id for _, mailing_id in got} == {first.pk, second.pk}
    sent = Delivery.objects.filter(mailing__in=[first, second], status=Status.SENT)
    skipped = Delivery.objects.filter(mailing__in=[first, second], status=Status.SKIPPED)
    assert sent.count() == skipped.count() == 400
    assert set(skipped.values_list("skip_reason", flat=True)) == {SkipReason.FREQUENCY_CAP_DAY}
