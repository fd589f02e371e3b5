"""Redis restarted mid-send, empty: its queued chains are gone, PostgreSQL still knows the work.

The test runs a redis-server of its own (the shared test Redis is left alone), with no
persistence, kills it mid-send and starts it again on the same port: the broker's queues, the
unacknowledged tasks, the rate buckets and the breaker's counts are all gone. Beat's sweep finds
the mailing stalled and queues its chains again from the deliveries still pending.
"""

import pytest

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_send
from tests.factories import MailingFactory
from tests.processes import RedisServer, broker_of_this_process, wait_for
from tests.sending_helpers import (
    assert_each_received_exactly_once,
    assert_the_ledger_says_each_was_sent,
    make_audience,
    postmark_env,
    sent_count,
    wait_until_finished,
)

pytestmark = pytest.mark.slow


def test_redis_restarted_empty_mid_send_delays_the_mailing_and_it_finishes_exactly_once(
    celery_worker_factory, tmp_path
):
    emails = make_audience(10_000)
    mailing = MailingFactory()
    redis_server = RedisServer(tmp_path).start()
    try:
        with broker_of_this_process(redis_server.url), FakePostmark(record_bodies=False) as esp:
            env = postmark_env(
                esp,
                REDIS_URL=redis_server.url,
                RALLY_SEND_BATCH_SIZE=100,
                RALLY_SWEEP_SECONDS=1,
                RALLY_SEND_STALL_SECONDS=2,
            )
            worker = celery_worker_factory(**env, beat=True)
            mailing_send(mailing=mailing)
            wait_for(lambda: sent_count(mailing) >= 3_000, timeout=120, message=worker.log)
            redis_server.kill()
            # Down until the worker has tried to reconnect twice and the batches it was sending
            # are over: no task is left anywhere, only the deliveries in PostgreSQL. Now and
            # then kombu fails to restore its unacknowledged messages as the broker goes away,
            # and the worker exits ("Unrecoverable error": AttributeError on the connection's
            # hostname), after finishing the batches it had. Its supervisor would start it
            # again (compose's restart policy); so does this test, once Redis is back.
            claimed = Delivery.objects.filter(mailing=mailing, status=Delivery.Status.CLAIMED)

            def worker_exited() -> bool:
                return worker.process.poll() is not None

            wait_for(
                lambda: ("(2/100)" in worker.log() or worker_exited()) and not claimed.exists(),
                timeout=60,
                message=worker.log,
            )
            assert mailing_delivery_counts(mailing)["pending"] > 0
            redis_server.start()
            workers = [worker]
            if worker_exited():
                workers.append(celery_worker_factory(**env, beat=True))

            wait_until_finished(mailing, workers, timeout=180)
            assert mailing.status == Mailing.Status.SENT, mailing.status_reason
            assert_each_received_exactly_once(esp, emails)
    finally:
        redis_server.kill()
    assert mailing_delivery_counts(mailing)["unknown"] == 0
    assert_the_ledger_says_each_was_sent(mailing, emails)
