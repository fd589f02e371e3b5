"""An A/B test with real parts: a Celery worker process, Redis, the test database, the fake
Postmark in its own process, the public petition pages and `manage.py mailing_ab_decide`.
"""

import io
import json
import re
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client

from campaigns.models import Signature
from espfakes import FakePostmark
from mailings.models import Delivery, Mailing, MailingVariant
from mailings.sending import mailing_send
from supporters.models import Supporter
from tests.factories import MailingFactory
from tests.processes import wait_for
from tests.sending_helpers import postmark_env

AUDIENCE = 150


def wait_for_status(mailing: Mailing, status: str, worker) -> None:
    def reached():
        mailing.refresh_from_db()
        return mailing.status == status

    wait_for(
        reached,
        timeout=90,
        message=lambda: f"mailing {mailing.status}; worker log:\n{worker.log()[-3000:]}",
    )


def sign_through_the_personal_link(html: str) -> None:
    """Do what a reader does: follow the mailing's petition link, then press the one button."""
    client = Client()
    tracked = re.search(r'href="(http://[^"]+/r/[^"]+/)"', html)[1]
    redirect = client.get(urlsplit(tracked).path)
    location = urlsplit(redirect["Location"])
    (token,) = parse_qs(location.query)["t"]
    signed = client.post(f"{location.path}?{location.query}", {"t": token})
    assert signed.status_code == 302


def decide(mailing: Mailing) -> dict:
    out = io.StringIO()
    call_command("mailing_ab_decide", str(mailing.pk), stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def ab_mailing(transactional_db):
    Supporter.objects.bulk_create(
        [Supporter(email=f"reader{n}@example.org", first_name=f"R{n}") for n in range(AUDIENCE)]
    )
    mailing = MailingFactory(
        subject="Subject A", ab_test_share=20, ab_min_deliveries=5, ab_confidence="0.95"
    )
    MailingVariant.objects.create(mailing=mailing, label="B", subject="Subject B")
    return mailing


def test_signatures_from_bs_readers_send_b_to_everyone_else_and_nobody_gets_two(
    celery_worker_factory, ab_mailing
):
    with FakePostmark() as esp:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=20))
        mailing_send(mailing=ab_mailing)
        wait_for_status(ab_mailing, Mailing.Status.WAITING_FOR_WINNER, worker)
        test_messages = esp.messages()
        assert 0 < len(test_messages) < AUDIENCE
        assert {m["subject"] for m in test_messages} == {"Subject A", "Subject B"}
        for message in test_messages:
            if message["subject"] == "Subject B":
                sign_through_the_personal_link(message["html"])
        b_readers = sum(m["subject"] == "Subject B" for m in test_messages)
        assert Signature.objects.filter(mailing=ab_mailing).count() == b_readers

        decision = decide(ab_mailing)

        assert decision["winner"] == "B" and decision["metric"] == "signatures"
        assert decision["confidence"] >= 0.95
        assert decision["sent_to_remainder"] == AUDIENCE - len(test_messages)
        wait_for_status(ab_mailing, Mailing.Status.SENT, worker)
        messages = esp.messages()

    assert Counter(m["recipient"] for m in messages) == {
        email: 1 for email in Supporter.objects.values_list("email", flat=True)
    }
    in_test = {m["recipient"] for m in test_messages}
    rest = [m for m in messages if m["recipient"] not in in_test]
    assert rest and {m["subject"] for m in rest} == {"Subject B"}
    ledger = Counter(Delivery.objects.filter(mailing=ab_mailing).values_list("variant", "status"))
    assert ledger[("B", "sent")] == AUDIENCE - (len(test_messages) - b_readers)


def test_without_a_significant_winner_the_rest_get_a(celery_worker_factory, ab_mailing):
    with FakePostmark() as esp:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=20))
        mailing_send(mailing=ab_mailing)
        wait_for_status(ab_mailing, Mailing.Status.WAITING_FOR_WINNER, worker)
        test_messages = esp.messages()

        decision = decide(ab_mailing)

        assert decision["winner"] == "A" and decision["significant"] is False
        wait_for_status(ab_mailing, Mailing.Status.SENT, worker)
        messages = esp.messages()

    assert len(messages) == AUDIENCE
    assert len({m["recipient"] for m in messages}) == AUDIENCE
    in_test = {m["recipient"] for m in test_messages}
    assert {m["subject"] for m in messages if m["recipient"] not in in_test} == {"Subject A"}
