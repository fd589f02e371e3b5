"""Settling unknown deliveries by asking the ESP: the reconciler against the fake Postmark.

The fake runs in its own process and answers Postmark's outbound message search over what it
really accepted; messages reach it through anymail's real Postmark backend. A "crash" here is
what a lost worker leaves: deliveries UNKNOWN whose messages the ESP accepted, or never got.
"""

import threading
from datetime import timedelta

import pytest
from anymail.message import AnymailMessage
from django.core.mail import get_connection
from django.db import connection as db_connection
from django.utils import timezone

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing, OutboxMessage
from mailings.reports.selectors import mailing_report
from mailings.sending.reconcile import delivery_reconcile_unknown, mailing_unknown_summary
from mailings.sending.reconcile.postmark import PostmarkReconciler
from supporters.models import Supporter
from tests.factories import MailingFactory

Status = Delivery.Status
POSTMARK = "anymail.backends.postmark.EmailBackend"


@pytest.fixture
def postmark(settings):
    """A fake Postmark, with anymail pointed at it and no wait before asking."""
    with FakePostmark() as esp:
        settings.EMAIL_BACKEND = POSTMARK
        settings.ANYMAIL = {**settings.ANYMAIL, **esp.anymail_settings()}
        settings.RALLY_RECONCILE_DELAY_SECONDS = 0
        settings.RALLY_RECONCILE_MAX_ATTEMPTS = 3
        yield esp


def lost_batch(mailing: Mailing, count: int, *, ago: timedelta = timedelta(seconds=5)):
    """Leave `count` deliveries UNKNOWN, as the sweep does after their worker died."""
    supporters = Supporter.objects.bulk_create(
        Supporter(email=f"m{mailing.pk}-{n}@example.org", first_name=f"N{n}") for n in range(count)
    )
    Delivery.objects.bulk_create(Delivery(mailing=mailing, supporter=s) for s in supporters)
    then = timezone.now() - ago
    Delivery.objects.filter(mailing=mailing).update(
        status=Status.UNKNOWN,
        claimed_by="dead:1",
        lease_expires_at=then,
        updated_at=then,
        error="The worker that claimed this message stopped before recording the ESP's answer",
    )
    return list(Delivery.objects.filter(mailing=mailing).order_by("pk").select_related("supporter"))


def accepted_before_the_crash(deliveries) -> dict[int, str]:
    """Hand these deliveries' messages to the ESP, as the dead worker did; return their ids."""
    ids = {}
    with get_connection() as connection:
        for delivery in deliveries:
            message = AnymailMessage(
                "Appeal",
                "Sign",
                "campaigns@rally.example",
                [delivery.supporter.email],
                connection=connection,
                metadata={"delivery_id": str(delivery.pk), "mailing_id": str(delivery.mailing_id)},
            )
            message.send()
            ids[delivery.pk] = message.anymail_status.message_id
    return ids


def statuses(mailing) -> dict[int, str]:
    return dict(Delivery.objects.filter(mailing=mailing).values_list("pk", "status"))


@pytest.mark.django_db
def test_what_the_esp_accepted_becomes_sent_with_its_id_and_counts_in_the_report(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    deliveries = lost_batch(mailing, 3)
    message_ids = accepted_before_the_crash(deliveries)

    outcome = delivery_reconcile_unknown()

    assert (outcome.asked, outcome.found_sent, outcome.put_back) == (3, 3, 0)
    for delivery in Delivery.objects.filter(mailing=mailing):
        assert delivery.status == Status.SENT
        assert delivery.esp_message_id == message_ids[delivery.pk]
        assert delivery.sent_at is not None
        assert "accepted" in delivery.error
    assert mailing_report(mailing).totals["sent"] == 3
    # Nobody was sent anything more.
    assert postmark.counts() == {d.supporter.email: 1 for d in deliveries}
    # Sent as of now for the frequency cap, which looks for mailings that beat lately.
    mailing.refresh_from_db()
    assert mailing.heartbeat_at > timezone.now() - timedelta(minutes=1)


@pytest.mark.django_db
def test_what_the_esp_never_accepted_is_sent_again_once_through_the_normal_claim(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    deliveries = lost_batch(mailing, 4)
    accepted_before_the_crash(deliveries[:1])

    first = delivery_reconcile_unknown()
    second = delivery_reconcile_unknown()

    assert (first.found_sent, first.put_back, first.resent) == (1, 3, 3)
    assert (second.asked, second.resent) == (0, 0)
    assert set(statuses(mailing).values()) == {Status.SENT}
    assert postmark.counts() == {d.supporter.email: 1 for d in deliveries}
    resent = Delivery.objects.filter(mailing=mailing, resent_at__isnull=False)
    assert resent.count() == 3
    assert all(d.esp_message_id and d.claimed_by for d in resent)
    assert mailing_report(mailing).totals["sent"] == 4


@pytest.mark.django_db(transaction=True)
def test_two_reconcilers_at_once_send_what_was_never_accepted_once(postmark, monkeypatch):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    deliveries = lost_batch(mailing, 30)
    accepted_before_the_crash(deliveries[:10])
    # Both have read the unknown rows and ask the ESP together, before either acts.
    both_asking = threading.Barrier(2, timeout=30)
    look_up = PostmarkReconciler.look_up

    def look_up_together(self, **question):
        both_asking.wait()
        return look_up(self, **question)

    monkeypatch.setattr(PostmarkReconciler, "look_up", look_up_together)
    outcomes, errors = [], []

    def run(name):
        try:
            outcomes.append(delivery_reconcile_unknown(worker=name))
        except Exception as error:  # noqa: BLE001 -- reported below
            errors.append(error)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=run, args=(f"r{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert sum(o.asked for o in outcomes) == 60, "both asked about every delivery"
    assert sum(o.found_sent for o in outcomes) == 10
    assert sum(o.put_back for o in outcomes) == 20
    assert sum(o.resent for o in outcomes) == 20
    assert postmark.duplicates() == {}
    assert postmark.counts() == {d.supporter.email: 1 for d in deliveries}
    assert set(statuses(mailing).values()) == {Status.SENT}
    assert mailing_report(mailing).totals["sent"] == 30


@pytest.mark.django_db
def test_a_resent_delivery_lost_again_and_never_accepted_is_not_sent_a_third_time(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    (delivery,) = lost_batch(mailing, 1)
    Delivery.objects.filter(pk=delivery.pk).update(resent_at=timezone.now())

    outcome = delivery_reconcile_unknown()

    assert (outcome.put_back, outcome.given_up, outcome.resent) == (0, 1, 0)
    delivery.refresh_from_db()
    assert delivery.status == Status.UNKNOWN
    assert "not sent a third time" in delivery.error
    assert postmark.counts() == {}
    assert delivery_reconcile_unknown().asked == 0, "it is not asked about again"


@pytest.mark.django_db
def test_an_esp_that_cannot_answer_is_asked_again_then_the_delivery_stays_unknown(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    (delivery,) = lost_batch(mailing, 1)

    for attempt in range(1, 4):
        postmark.fail_next(1, status=503)
        outcome = delivery_reconcile_unknown()
        delivery.refresh_from_db()
        assert delivery.status == Status.UNKNOWN
        assert delivery.reconcile_attempts == attempt
        assert "503" in delivery.error
        Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now())

    assert outcome.given_up == 1
    assert "not sent again" in delivery.error and "3 questions" in delivery.error
    # Given up: the ESP is not asked again, even now that it would answer.
    searches = postmark.stats()["searches"]
    assert delivery_reconcile_unknown().asked == 0
    assert postmark.stats()["searches"] == searches
    assert postmark.counts() == {}
    summary = mailing_unknown_summary(mailing)
    assert (summary.unknown, summary.checkable, summary.given_up) == (1, True, 1)


@pytest.mark.django_db
def test_an_esp_that_answers_on_a_later_try_settles_the_delivery(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    deliveries = lost_batch(mailing, 2)
    accepted_before_the_crash(deliveries[:1])
    postmark.fail_next(1, status="drop")

    assert delivery_reconcile_unknown().unanswered == 2
    Delivery.objects.filter(mailing=mailing).update(updated_at=timezone.now())
    later = delivery_reconcile_unknown()

    assert (later.found_sent, later.put_back) == (1, 1)
    assert postmark.counts() == {d.supporter.email: 1 for d in deliveries}


@pytest.mark.django_db
def test_a_search_that_does_not_list_a_later_accepted_message_yet_proves_nothing(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    deliveries = lost_batch(mailing, 3, ago=timedelta(seconds=30))
    accepted_before_the_crash(deliveries[:1])
    # After the crash another worker sent one more, which the ledger knows was accepted.
    (later,) = accepted_before_the_crash(deliveries[2:]).items()
    Delivery.objects.filter(pk=later[0]).update(
        status=Status.SENT, esp_message_id=later[1], sent_at=timezone.now() - timedelta(seconds=5)
    )
    # The search runs behind: the first accepted message is not listed yet either.
    postmark.configure(search_lag_ms=60_000)

    outcome = delivery_reconcile_unknown()

    assert (outcome.unanswered, outcome.put_back) == (2, 0)
    assert "does not list yet" in Delivery.objects.get(pk=deliveries[1].pk).error
    postmark.configure(search_lag_ms=0)
    Delivery.objects.filter(status=Status.UNKNOWN).update(
        updated_at=timezone.now() - timedelta(seconds=30)
    )
    caught_up = delivery_reconcile_unknown()
    assert (caught_up.found_sent, caught_up.put_back) == (1, 1)
    assert postmark.duplicates() == {}


@pytest.mark.django_db
def test_a_delivery_is_not_asked_about_before_the_delay(postmark, settings):
    settings.RALLY_RECONCILE_DELAY_SECONDS = 300
    mailing = MailingFactory(status=Mailing.Status.SENT)
    lost_batch(mailing, 2, ago=timedelta(seconds=60))

    assert delivery_reconcile_unknown().asked == 0
    assert postmark.stats()["searches"] == 0
    Delivery.objects.filter(mailing=mailing).update(
        updated_at=timezone.now() - timedelta(seconds=301)
    )
    assert delivery_reconcile_unknown().asked == 2


@pytest.mark.django_db
def test_two_hundred_and_fifty_unknowns_take_one_search_not_one_each(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    deliveries = lost_batch(mailing, 250)
    accepted_before_the_crash(deliveries[:200])

    outcome = delivery_reconcile_unknown()

    assert (outcome.found_sent, outcome.put_back, outcome.resent) == (200, 50, 50)
    assert postmark.stats()["searches"] == 1
    assert postmark.counts() == {d.supporter.email: 1 for d in deliveries}


@pytest.mark.django_db
def test_never_accepted_deliveries_of_a_paused_mailing_wait_for_its_resume(postmark):
    mailing = MailingFactory(status=Mailing.Status.PAUSED)
    lost_batch(mailing, 2)

    outcome = delivery_reconcile_unknown()

    assert (outcome.put_back, outcome.resent) == (2, 0)
    assert set(statuses(mailing).values()) == {Status.PENDING}
    assert postmark.counts() == {}


@pytest.mark.django_db
def test_never_accepted_deliveries_of_a_cancelled_mailing_are_cancelled(postmark):
    mailing = MailingFactory(status=Mailing.Status.CANCELLED)
    lost_batch(mailing, 2)

    assert delivery_reconcile_unknown().cancelled == 2
    assert set(statuses(mailing).values()) == {Status.CANCELLED}
    assert postmark.counts() == {}


@pytest.mark.django_db
def test_the_outbox_backend_answers_from_its_own_table(settings):
    settings.EMAIL_BACKEND = "mailings.backends.outbox.EmailBackend"
    settings.RALLY_RECONCILE_DELAY_SECONDS = 0
    mailing = MailingFactory(status=Mailing.Status.SENT)
    deliveries = lost_batch(mailing, 3)
    accepted_before_the_crash(deliveries[:2])

    outcome = delivery_reconcile_unknown()

    assert (outcome.found_sent, outcome.put_back, outcome.resent) == (2, 1, 1)
    assert sorted(OutboxMessage.objects.values_list("to", flat=True)) == sorted(
        d.supporter.email for d in deliveries
    )
    assert set(statuses(mailing).values()) == {Status.SENT}


@pytest.mark.django_db
def test_over_smtp_unknown_deliveries_stay_unknown_and_the_page_says_they_cannot_be_checked(
    admin_client, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.RALLY_RECONCILE_DELAY_SECONDS = 0
    mailing = MailingFactory(status=Mailing.Status.SENT)
    lost_batch(mailing, 2)

    outcome = delivery_reconcile_unknown()

    assert outcome.asked == 0
    assert set(statuses(mailing).values()) == {Status.UNKNOWN}
    summary = mailing_unknown_summary(mailing)
    assert (summary.unknown, summary.checkable, summary.waiting) == (2, False, 0)
    page = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/progress/").content.decode()
    assert '<td class="number" id="count-unknown">2</td>' in page
    assert "2 deliveries are unknown" in page
    assert "cannot be checked" in page


@pytest.mark.django_db
def test_the_progress_page_says_the_esp_is_being_asked(admin_client, postmark, settings):
    settings.RALLY_RECONCILE_DELAY_SECONDS = 300
    mailing = MailingFactory(status=Mailing.Status.SENT)
    lost_batch(mailing, 1)

    page = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/progress/").content.decode()

    assert "1 delivery is unknown" in page
    assert "Rally is asking the ESP about 1" in page


@pytest.mark.django_db
def test_a_delivery_older_than_the_esp_keeps_its_record_stays_unknown(postmark):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    (delivery,) = lost_batch(mailing, 1, ago=timedelta(days=8))

    outcome = delivery_reconcile_unknown()

    assert (outcome.given_up, outcome.put_back) == (1, 0)
    delivery.refresh_from_db()
    assert delivery.status == Status.UNKNOWN
    assert "longer than the ESP keeps its record" in delivery.error
    assert postmark.stats()["searches"] == 0
    assert postmark.counts() == {}
