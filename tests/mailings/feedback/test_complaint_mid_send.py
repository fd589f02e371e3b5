"""A complaint that arrives while a mailing is going out stops the rest of that send to them.

Real parts: a Celery worker process (bulk and tracking queues), Redis, the test database, the
fake Postmark API reached by anymail's Postmark backend, and anymail's webhook view.
"""

import json

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.sending import mailing_send
from supporters.models import Supporter
from tests.factories import MailingFactory, SupporterFactory
from tests.processes import wait_for

from .payloads import ESPS, Message, basic_auth, metadata_for

RECIPIENTS = 15
BATCH_SIZE = 3
# Each batch the fake ESP takes this long to answer: the target's batch, the last, is claimed
# seconds after the first goes out, while a webhook is applied in a fraction of one.
ESP_LATENCY_MS = 800


def test_a_complaint_mid_send_suppresses_the_supporter_before_their_row_is_claimed(
    celery_worker_factory, client
):
    mailing = MailingFactory()
    audience = [SupporterFactory(email=f"reader{n:02d}@example.org") for n in range(RECIPIENTS)]
    # Supporter ids follow creation order, and batches claim the lowest pending ids first.
    target = audience[-1]

    with FakePostmark(latency_ms=ESP_LATENCY_MS) as esp:
        worker = celery_worker_factory(
            EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
            ANYMAIL=json.dumps(esp.anymail_settings()),
            RALLY_SEND_BATCH_SIZE=str(BATCH_SIZE),
            RALLY_SEND_PARALLELISM="1",
        )
        mailing_send(mailing=mailing)

        def first_batch_sent():
            return Delivery.objects.filter(mailing=mailing, status=Delivery.Status.SENT).exists()

        wait_for(
            first_batch_sent,
            timeout=60,
            message=lambda: f"nothing sent; worker log:\n{worker.log()[-3000:]}",
        )
        delivery = Delivery.objects.get(mailing=mailing, supporter=target)
        assert delivery.status == Delivery.Status.PENDING, "the send outran the test's setup"

        # The ESP reports a complaint about the target (as Postmark would, for an earlier
        # mailing's message that carried the same metadata): the web stores it and queues it,
        # and the worker's tracking queue applies it.
        complaint = ESPS["postmark"](
            "complaint",
            Message(email=target.email, message_id="earlier", metadata=metadata_for(delivery)),
        )
        response = client.generic(
            "POST",
            complaint.path,
            complaint.body.encode(),
            content_type=complaint.content_type,
            **basic_auth(),
        )
        assert response.status_code == 200

        def target_suppressed():
            return Supporter.objects.filter(
                pk=target.pk, status=Supporter.Status.COMPLAINED
            ).exists()

        wait_for(
            target_suppressed,
            timeout=30,
            message=lambda: f"complaint not applied; worker log:\n{worker.log()[-3000:]}",
        )
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.PENDING, "claimed before the complaint landed"

        def finished():
            return Mailing.objects.filter(pk=mailing.pk, status=Mailing.Status.SENT).exists()

        wait_for(
            finished,
            timeout=90,
            message=lambda: f"mailing not sent; worker log:\n{worker.log()[-3000:]}",
        )
        counts = esp.counts()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SKIPPED
    assert target.email not in counts
    assert counts == {supporter.email: 1 for supporter in audience[:-1]}
