"""The send queue's promises, with real parts: Celery worker processes, Redis, the test database
and a fake ESP in its own process (espfakes), reached through anymail's real Postmark backend or
Django's SMTP backend. Each test says in its name what it holds the queue to.
"""

import re
import time
from urllib.parse import quote, urlsplit

import pytest
from django.test import Client

from espfakes import FakePostmark, FakeSMTP
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_pause, mailing_resume, mailing_send
from mailings.sending.tasks import mailing_send_batch_task
from supporters.models import Supporter
from supporters.tokens import read_unsubscribe_token
from tests.factories import MailingFactory, SignatureFactory, SupporterFactory
from tests.processes import wait_for
from tests.sending_helpers import (
    assert_each_received_exactly_once,
    make_audience,
    postmark_env,
    sent_count,
    smtp_env,
    wait_until_finished,
    wait_until_no_batch_is_claimed,
)


@pytest.fixture(params=["postmark", "smtp"])
def esp_and_worker_env(request):
    """Yield a running fake ESP and the environment that points a worker at it."""
    fake, env = (
        (FakePostmark, postmark_env) if request.param == "postmark" else (FakeSMTP, smtp_env)
    )
    with fake() as esp:
        yield esp, env(esp)


@pytest.mark.parametrize("esp_kind", ["postmark", "smtp"])
def test_kill_9_of_a_worker_at_30_percent_loses_nothing_and_resends_nobody(
    celery_worker_factory, esp_kind
):
    emails = make_audience(10_000)
    mailing = MailingFactory()
    fake = (
        FakePostmark(record_bodies=False)
        if esp_kind == "postmark"
        else FakeSMTP(record_bodies=False)
    )
    with fake as esp:
        env = (postmark_env if esp_kind == "postmark" else smtp_env)(
            esp,
            RALLY_SEND_BATCH_SIZE=100,
            RALLY_SEND_LEASE_SECONDS=3,
            RALLY_SEND_STALL_SECONDS=2,
            RALLY_SWEEP_SECONDS=1,
        )
        victim = celery_worker_factory(**env)
        mailing_send(mailing=mailing)
        wait_for(lambda: sent_count(mailing) >= 3_000, timeout=120, message=victim.log)
        victim.kill()
        # The replacement runs beat too: the sweep turns the dead worker's claims UNKNOWN and
        # restarts the chains that died with it.
        survivor = celery_worker_factory(**env, beat=True)
        wait_until_finished(mailing, [victim, survivor])

        counts = esp.counts()
    assert mailing.status == Mailing.Status.SENT
    ledger = mailing_delivery_counts(mailing)
    assert all(n == 1 for n in counts.values()), "somebody received the mailing twice"
    # Each of the dead worker's two pool processes held at most one batch of 100.
    assert ledger["unknown"] <= 2 * 100
    assert ledger["sent"] + ledger["unknown"] == 10_000
    assert ledger["pending"] == ledger["claimed"] == 0
    # Every row marked sent was received; an unknown row may or may not have been.
    received = set(counts)
    sent_emails = set(
        Delivery.objects.filter(mailing=mailing, status="sent").values_list(
            "supporter__email", flat=True
        )
    )
    assert sent_emails <= received
    assert received <= set(emails)


def test_pause_and_resume_ten_times_resends_nobody_and_skips_nobody(celery_worker_factory):
    emails = make_audience(2_000)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=20))
        mailing_send(mailing=mailing)
        for cycle in range(1, 11):
            wait_for(
                lambda cycle=cycle: sent_count(mailing) >= cycle * 150,
                timeout=60,
                message=worker.log,
            )
            assert mailing_pause(mailing_id=mailing.pk)
            # Within one batch, nothing is claimed any more and nothing more arrives.
            wait_until_no_batch_is_claimed(mailing, worker)
            received_while_paused = sum(esp.counts().values())
            assert received_while_paused == sent_count(mailing)
            assert mailing_resume(mailing_id=mailing.pk)
        wait_until_finished(mailing, [worker])
        assert mailing.status == Mailing.Status.SENT
        assert_each_received_exactly_once(esp, emails)


def test_the_same_batch_task_enqueued_five_times_sends_nobody_twice(celery_worker_factory):
    emails = make_audience(1_000)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=50))
        mailing_send(mailing=mailing)
        wait_for(lambda: sent_count(mailing) > 0, timeout=60, message=worker.log)
        for _ in range(5):
            mailing_send_batch_task.delay(mailing.pk)
        wait_until_finished(mailing, [worker])
        assert_each_received_exactly_once(esp, emails)
    assert mailing_delivery_counts(mailing)["sent"] == 1_000


def test_an_unsubscribe_mid_send_is_honoured_for_every_message_not_yet_sent(
    celery_worker_factory,
):
    emails = make_audience(600)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        # 100 a second keeps the send going long enough to unsubscribe people during it.
        worker = celery_worker_factory(
            **postmark_env(esp, RALLY_SEND_BATCH_SIZE=10, RALLY_SEND_RATE_PER_SECOND=100)
        )
        mailing_send(mailing=mailing)
        wait_for(lambda: sent_count(mailing) >= 50, timeout=60, message=worker.log)
        leaving = emails[-200:]
        Supporter.objects.filter(email__in=leaving).update(status=Supporter.Status.UNSUBSCRIBED)
        wait_until_finished(mailing, [worker])
        received = set(esp.counts())
    assert not received & set(leaving)
    skipped = Delivery.objects.filter(mailing=mailing, status="skipped")
    assert set(skipped.values_list("supporter__email", flat=True)) == set(leaving)
    assert received == set(emails[:-200])


def test_a_429_and_5xx_storm_is_back_pressure_and_everyone_is_delivered_once(
    celery_worker_factory,
):
    emails = make_audience(500)
    mailing = MailingFactory()
    # Postmark sends no Retry-After; our own back-off paces the retries.
    storm = {"rate_429": 0.2, "rate_500": 0.1, "retry_after": 0, "seed": 7}
    with FakePostmark(record_bodies=False, **storm) as esp:
        # Small batches: each is one request to Postmark's batch API, so many requests.
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=5))
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker], timeout=180)
        stats = esp.stats()
        assert mailing.status == Mailing.Status.SENT, mailing.status_reason
        assert stats["errors_429"] >= 5 and stats["errors_5xx"] >= 2
        assert_each_received_exactly_once(esp, emails)


def test_retry_after_is_honoured(celery_worker_factory):
    emails = make_audience(1)
    mailing = MailingFactory()
    with FakePostmark(retry_after=2) as esp:
        worker = celery_worker_factory(**postmark_env(esp))
        esp.fail_next(1, status=429)
        asked_at = time.time()
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker])
        (message,) = esp.messages()
        assert esp.stats()["errors_429"] == 1
    assert message["recipient"] == emails[0]
    assert message["accepted_at"] - asked_at >= 2.0


def test_smtp_temporary_failures_are_retried_and_everyone_is_delivered_once(
    celery_worker_factory,
):
    emails = make_audience(500)
    mailing = MailingFactory()
    with FakeSMTP(record_bodies=False, temp_fail_rate=0.15, seed=3) as esp:
        worker = celery_worker_factory(**smtp_env(esp, RALLY_SEND_BATCH_SIZE=25))
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker], timeout=180)
        assert mailing.status == Mailing.Status.SENT, mailing.status_reason
        assert_each_received_exactly_once(esp, emails)


def test_an_esp_that_keeps_failing_pauses_the_mailing_and_says_why(celery_worker_factory):
    make_audience(300)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False, rate_500=1.0) as esp:
        worker = celery_worker_factory(
            **postmark_env(esp, RALLY_SEND_BATCH_SIZE=25, RALLY_BREAKER_MIN_ATTEMPTS=20)
        )
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker], timeout=120)
        # A batch that was under way when the breaker tripped hands its rows back too.
        wait_until_no_batch_is_claimed(mailing, worker)
    assert mailing.status == Mailing.Status.PAUSED
    assert mailing.status_reason.startswith("Paused automatically: 100% of")
    # rate_500 answers 500 or 503 at random: the reason must quote whichever came last.
    assert re.search(r"ESP answered 50[03]", mailing.status_reason), mailing.status_reason
    # Nothing was lost: every delivery is still pending, ready for a resume.
    assert mailing_delivery_counts(mailing)["pending"] == 300


def test_permanent_failures_are_recorded_with_the_esps_reason(celery_worker_factory):
    emails = make_audience(60)
    refused = emails[:5]
    mailing = MailingFactory()
    with FakePostmark(reject_recipients=refused) as esp:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=20))
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker])
        assert set(esp.counts()) == set(emails[5:])
    failed = Delivery.objects.filter(mailing=mailing, status="failed").select_related("supporter")
    assert {delivery.supporter.email for delivery in failed} == set(refused)
    for delivery in failed:
        assert "406" in delivery.error and "inactive" in delivery.error.lower(), delivery.error
    assert mailing.status == Mailing.Status.SENT


def test_rate_limit_of_50_per_second_holds_within_10_percent_across_two_workers(
    celery_worker_factory,
):
    make_audience(500)
    mailing = MailingFactory()
    with FakePostmark() as esp:
        env = postmark_env(esp, RALLY_SEND_BATCH_SIZE=10, RALLY_SEND_RATE_PER_SECOND=50)
        workers = [celery_worker_factory(**env), celery_worker_factory(**env)]
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, workers)
        times = sorted(message["accepted_at"] for message in esp.messages())
    assert len(times) == 500
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 45 <= rate <= 55, f"{rate:.1f} messages/s"
    # Both workers took part.
    claimed_by = set(Delivery.objects.filter(mailing=mailing).values_list("claimed_by", flat=True))
    assert len({name.split("@")[0] for name in claimed_by}) == 2


def test_every_message_carries_both_list_unsubscribe_headers_and_they_work(
    celery_worker_factory,
):
    emails = make_audience(30)
    mailing = MailingFactory()
    with FakePostmark() as esp:
        worker = celery_worker_factory(**postmark_env(esp))
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker])
        messages = esp.messages()
    assert {message["recipient"] for message in messages} == set(emails)
    client = Client()
    for message in messages:
        headers = message["headers"]
        assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
        https_link, mailto_link = headers["List-Unsubscribe"][0].split(", ")
        url = https_link.strip("<>")
        assert url.startswith("http") and mailto_link.startswith("<mailto:")
        token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        supporter = Supporter.objects.get(email=message["recipient"])
        assert read_unsubscribe_token(token) == supporter.pk
        assert f"subject={quote('unsubscribe ' + token)}" in mailto_link
        assert message["metadata"]["mailing_id"] == str(mailing.pk)
        # The one-click POST a mail client makes unsubscribes exactly this supporter.
        assert client.post(urlsplit(url).path, {"List-Unsubscribe": "One-Click"}).status_code == 200
        supporter.refresh_from_db()
        assert supporter.status == Supporter.Status.UNSUBSCRIBED


def test_a_lost_reply_is_recorded_unknown_and_never_sent_twice(celery_worker_factory):
    emails = make_audience(100)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        # The fake accepts one request's messages (a batch of 20), then hangs up unanswered.
        esp.fail_next(1, status="drop_after_accept")
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=20))
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker])
        assert_each_received_exactly_once(esp, emails)
    assert mailing.status == Mailing.Status.SENT
    ledger = mailing_delivery_counts(mailing)
    assert (ledger["sent"], ledger["unknown"]) == (80, 20)
    for delivery in Delivery.objects.filter(mailing=mailing, status="unknown"):
        assert "Remote end closed connection" in delivery.error


def test_each_subscriber_who_has_not_signed_gets_exactly_one_personal_email(
    celery_worker_factory, esp_and_worker_env
):
    esp, worker_env = esp_and_worker_env
    mailing = MailingFactory()
    audience = [
        SupporterFactory(email=f"reader{n}@example.org", first_name=f"Reader{n}") for n in range(40)
    ]
    for n in range(5):
        signer = SupporterFactory(email=f"signer{n}@example.org")
        SignatureFactory(petition=mailing.petition, supporter=signer)
    SupporterFactory(email="gone@example.org", status="unsubscribed")
    mailing.audience_not_signed_petition = mailing.petition
    mailing.save(update_fields=["audience_not_signed_petition"])

    worker = celery_worker_factory(
        **worker_env, RALLY_SEND_BATCH_SIZE="7", RALLY_SEND_PARALLELISM="3"
    )
    mailing_send(mailing=mailing)
    wait_until_finished(mailing, [worker], timeout=60)

    assert mailing.status == Mailing.Status.SENT
    assert esp.counts() == {supporter.email: 1 for supporter in audience}
    for message in esp.messages():
        number = message["recipient"].removeprefix("reader").split("@")[0]
        assert f"Dear Reader{number}," in message["text"]
        assert f"Reader{number}" in message["html"]
    assert mailing_delivery_counts(mailing) == {
        **dict.fromkeys(Delivery.Status.values, 0),
        "sent": len(audience),
    }
