"""A complaint storm from the ESP pauses a mailing part-way: every part real.

A Celery worker process sends through the fake Postmark, which posts SpamComplaint webhooks
about a share of the messages to Rally's live server (anymail's Postmark tracking view, with
the webhook secret); the same worker consumes the tracking queue, and the breaker pauses the
mailing once enough messages were sent.
"""

import json
import re

from django.db.models import Count

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.sending import mailing_send
from supporters.models import Supporter
from tests.factories import MailingFactory
from tests.processes import wait_for

RECIPIENTS = 1000
SAMPLE = 200
COMPLAINT_RATE = 0.02
WEBHOOK_AUTH = "rally-webhooks:test-secret"  # config/settings/test.py


def test_a_complaint_storm_pauses_the_mailing_before_it_reaches_everyone(
    celery_worker_factory, live_server
):
    Supporter.objects.bulk_create(
        Supporter(email=f"reader{n}@example.org", first_name=f"Reader{n}")
        for n in range(RECIPIENTS)
    )
    mailing = MailingFactory()
    host = live_server.url.removeprefix("http://")
    with FakePostmark(
        webhook_url=f"http://{WEBHOOK_AUTH}@{host}/anymail/postmark/tracking/",
        webhook_complaint_rate=COMPLAINT_RATE,
        record_bodies=False,
    ) as esp:
        worker = celery_worker_factory(
            EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
            ANYMAIL=json.dumps(esp.anymail_settings()),
            RALLY_BREAKER_MIN_SAMPLE=str(SAMPLE),
            # The breaker counts at most once a second per mailing; at 100 messages a second
            # the whole send takes ten, so a pause shortly after the sample is well before.
            RALLY_BREAKER_CHECK_SECONDS="1",
            RALLY_SEND_RATE_PER_SECOND="100",
            RALLY_SEND_BATCH_SIZE="20",
            RALLY_SEND_PARALLELISM="2",
        )
        mailing_send(mailing=mailing)

        def paused():
            mailing.refresh_from_db()
            return mailing.status == Mailing.Status.PAUSED

        wait_for(
            paused,
            timeout=120,
            message=lambda: (
                f"mailing {mailing.status}; fake ESP {esp.stats()}; worker log:\n"
                f"{worker.log()[-3000:]}"
            ),
        )
        # Batches in flight when it paused finish; then nothing more is sent.
        wait_for(
            lambda: (
                not Delivery.objects.filter(
                    mailing=mailing, status=Delivery.Status.CLAIMED
                ).exists()
            ),
            timeout=30,
            message="a batch never finished",
        )
        accepted = esp.stats()["accepted"]

    reason = re.fullmatch(
        r"Paused automatically: (\d+) of ([\d,]+) sent messages \(([\d.]+)%\) drew spam "
        r"complaints; the limit is 0\.3%\. Check the audience and content before resuming\.",
        mailing.status_reason,
    )
    assert reason, mailing.status_reason
    complaints, sample = int(reason[1]), int(reason[2].replace(",", ""))
    assert sample >= SAMPLE and complaints > 0.003 * sample
    [pause] = MailingAuditEntry.objects.filter(
        mailing=mailing, action=MailingAuditEntry.Action.PAUSED
    )
    assert (pause.actor, pause.detail) == (None, mailing.status_reason)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.PAUSED
    sent = Delivery.objects.filter(mailing=mailing, status=Delivery.Status.SENT).count()
    pending = Delivery.objects.filter(mailing=mailing, status=Delivery.Status.PENDING).count()
    by_status = dict(
        Delivery.objects.filter(mailing=mailing).values_list("status").annotate(n=Count("pk"))
    )
    assert sent == accepted and sent + pending == RECIPIENTS, (by_status, accepted)
    assert SAMPLE <= sent < RECIPIENTS * 0.8, sent
    # Whoever complained was suppressed at once, and their delivery says why.
    complained = Delivery.objects.filter(
        mailing=mailing, esp_status=Delivery.EspStatus.COMPLAINED
    ).select_related("supporter")
    assert complained.count() >= complaints
    assert {delivery.supporter.status for delivery in complained} == {Supporter.Status.COMPLAINED}
