"""The ESP down, then back: the send waits for it and finishes, nobody mailed twice or missed.

Two ways Rally waits, each with its own test:
- With the default circuit breaker, a failing ESP pauses the mailing within a batch and says
  why; a campaigner resumes it once the ESP is back. The outage's length does not matter then
  (nothing is tried while paused): here it is as long as the test takes, a few seconds, first
  answering 503, then refusing connections.
- With the breaker off (an operator's choice: RALLY_BREAKER_FAILURE_RATE=1), the task chains
  back off, up to minutes apart, and resume by themselves: here through a full minute of 503s.
"""

import re
import time
from collections import Counter

import pytest

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_resume, mailing_send
from tests.factories import MailingFactory
from tests.processes import wait_for
from tests.sending_helpers import (
    assert_counts_are_exactly_once,
    assert_the_ledger_says_each_was_sent,
    make_audience,
    postmark_env,
    sent_count,
    wait_until_finished,
    wait_until_no_batch_is_claimed,
)

pytestmark = pytest.mark.slow

AUDIENCE = 10_000
OUTAGE_SECONDS = 60


def test_an_esp_down_pauses_the_mailing_and_a_resume_once_it_is_back_mails_everyone_once(
    celery_worker_factory,
):
    emails = make_audience(AUDIENCE)
    mailing = MailingFactory()
    esp = FakePostmark(record_bodies=False).start()
    port = esp.port
    try:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=100))
        mailing_send(mailing=mailing)
        wait_for(lambda: sent_count(mailing) >= 3_000, timeout=120, message=worker.log)

        # Down, answering 503 (or 500): the breaker pauses the mailing, saying why.
        esp.configure(rate_500=1.0)
        _wait_until_paused(mailing, worker)
        assert re.search(r"ESP answered 50[03]", mailing.status_reason), mailing.status_reason
        # Down, refusing connections: nothing is in flight while paused, so the server can go.
        received = Counter(esp.counts())
        esp.stop()
        assert mailing_resume(mailing_id=mailing.pk)
        _wait_until_paused(mailing, worker)
        assert "Connection refused" in mailing.status_reason, mailing.status_reason
        assert sum(received.values()) == sent_count(mailing)

        # Back, on the same address: the campaigner resumes and the rest goes out.
        esp = FakePostmark(record_bodies=False, port=port).start()
        assert mailing_resume(mailing_id=mailing.pk)
        wait_until_finished(mailing, [worker])
        assert mailing.status == Mailing.Status.SENT, mailing.status_reason
        received.update(esp.counts())
    finally:
        esp.stop()
    assert_counts_are_exactly_once(received, emails)
    assert_the_ledger_says_each_was_sent(mailing, emails)


def test_an_esp_down_for_a_minute_with_the_breaker_off_is_waited_out_and_mails_everyone_once(
    celery_worker_factory,
):
    emails = make_audience(AUDIENCE)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        worker = celery_worker_factory(
            **postmark_env(esp, RALLY_SEND_BATCH_SIZE=100, RALLY_BREAKER_FAILURE_RATE=1.0)
        )
        mailing_send(mailing=mailing)
        wait_for(lambda: sent_count(mailing) >= 3_000, timeout=120, message=worker.log)
        esp.configure(rate_500=1.0)
        # The outage itself, a minute in which the ESP answers nothing but 503 and 500: this
        # sleep is the fault injected, not a wait for something to happen.
        time.sleep(OUTAGE_SECONDS)
        sent_while_down = sent_count(mailing)
        esp.configure(rate_500=0.0)
        requests_while_down = esp.stats()["errors_5xx"]

        wait_until_finished(mailing, [worker], timeout=300)
        assert mailing.status == Mailing.Status.SENT, mailing.status_reason
        assert_counts_are_exactly_once(esp.counts(), emails)
    assert_the_ledger_says_each_was_sent(mailing, emails)
    assert sent_while_down < AUDIENCE
    # The chains backed off: waits grew past the first few seconds, and a minute of trying
    # took a few hundred requests, not one after another.
    waits = [float(w) for w in re.findall(r"retrying in ([\d.]+)s", worker.log())]
    assert max(waits) > 8, waits
    assert requests_while_down < 1_000, requests_while_down


def _wait_until_paused(mailing: Mailing, worker) -> None:
    wait_until_finished(mailing, [worker])
    assert mailing.status == Mailing.Status.PAUSED, mailing.status
    wait_until_no_batch_is_claimed(mailing, worker)
    assert mailing_delivery_counts(mailing)["unknown"] == 0
    assert not Delivery.objects.filter(mailing=mailing, status=Delivery.Status.FAILED).exists()
