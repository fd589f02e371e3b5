"""SIGTERM to a worker mid-batch: Celery's warm shutdown finishes the batch in hand and exits.

A deployment stops a worker with SIGTERM to its main process (docker stop, Kubernetes). The
batch being sent is finished and recorded, its chain's next link goes back to Redis, and a
worker started afterwards carries on: nothing lost, nothing twice, nothing unknown.
"""

import signal
import time

import pytest

from espfakes import FakeSMTP
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_send
from tests.factories import MailingFactory
from tests.processes import wait_for
from tests.sending_helpers import (
    assert_each_received_exactly_once,
    assert_the_ledger_says_each_was_sent,
    make_audience,
    sent_count,
    smtp_env,
    wait_until_finished,
)

pytestmark = pytest.mark.slow


def test_sigterm_mid_batch_finishes_the_batch_in_hand_and_loses_nobody(celery_worker_factory):
    emails = make_audience(10_000)
    mailing = MailingFactory()
    with FakeSMTP(record_bodies=False) as esp:
        env = smtp_env(esp, RALLY_SEND_BATCH_SIZE=200, RALLY_SEND_PARALLELISM=2)
        stopping = celery_worker_factory(**env)
        mailing_send(mailing=mailing)
        wait_for(lambda: sent_count(mailing) >= 3_000, timeout=120, message=stopping.log)
        # SMTP takes one message per transaction; at 5 ms each a batch of 200 lasts a second,
        # so the signal lands with some of the batch sent and the rest still to send.
        accepted_before = esp.stats()["accepted"]
        esp.configure(latency_ms=5)
        slowed_at = time.time()
        # Signal while a batch is being sent, not while one waits to be recorded (on SQLite a
        # batch may wait for the database's one write lock): once a message has come in at the
        # slow pace, its batch has up to a second still to send.
        wait_for(
            lambda: any(
                message["accepted_at"] > slowed_at
                for message in esp.messages(offset=accepted_before)
            ),
            timeout=30,
            message=stopping.log,
        )
        claimed = Delivery.objects.filter(mailing=mailing, status=Delivery.Status.CLAIMED)
        wait_for(claimed.exists, timeout=30, message=stopping.log)
        in_hand = set(claimed.values_list("pk", flat=True))
        stopping.process.send_signal(signal.SIGTERM)
        signalled_at = time.time()
        assert stopping.process.wait(timeout=60) == 0, stopping.log()[-3000:]

        # The batches in hand were finished and recorded; none was cut short.
        assert "warm shutdown" in stopping.log().lower()
        assert any(message["accepted_at"] > signalled_at for message in esp.messages()), (
            "the signal found no batch being sent"
        )
        ledger = mailing_delivery_counts(mailing)
        assert ledger["claimed"] == ledger["unknown"] == ledger["failed"] == 0, ledger
        assert set(Delivery.objects.filter(pk__in=in_hand).values_list("status", flat=True)) == {
            Delivery.Status.SENT
        }
        assert sum(esp.counts().values()) == ledger["sent"] < 10_000

        # No beat, so no sweep: the chains went back to Redis, or nothing would carry on.
        esp.configure(latency_ms=0)
        carrying_on = celery_worker_factory(**env)
        wait_until_finished(mailing, [stopping, carrying_on])
        assert mailing.status == Mailing.Status.SENT
        assert_each_received_exactly_once(esp, emails)
    assert_the_ledger_says_each_was_sent(mailing, emails)
