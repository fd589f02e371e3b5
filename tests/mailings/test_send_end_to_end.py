"""The whole send path with real parts: a Celery worker process, Redis, the test database and a
fake ESP in its own process, reached by anymail's real Postmark backend or Django's SMTP backend.
"""

import json

import pytest

from espfakes import FakePostmark, FakeSMTP
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_send
from tests.factories import MailingFactory, SignatureFactory, SupporterFactory
from tests.processes import wait_for

RECIPIENTS = 40


@pytest.fixture(params=["postmark", "smtp"])
def esp_and_worker_env(request):
    """Yield a running fake ESP and the environment that points a worker at it."""
    if request.param == "postmark":
        with FakePostmark() as esp:
            yield (
                esp,
                {
                    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
                    "ANYMAIL": json.dumps(
                        {"POSTMARK_SERVER_TOKEN": esp.server_token, "POSTMARK_API_URL": esp.api_url}
                    ),
                },
            )
    else:
        with FakeSMTP() as esp:
            yield (
                esp,
                {
                    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "EMAIL_HOST": esp.host,
                    "EMAIL_PORT": str(esp.port),
                },
            )


def test_each_subscriber_who_has_not_signed_gets_exactly_one_personal_email(
    celery_worker_factory, esp_and_worker_env
):
    esp, worker_env = esp_and_worker_env
    mailing = MailingFactory()
    audience = [
        SupporterFactory(email=f"reader{n}@example.org", first_name=f"Reader{n}")
        for n in range(RECIPIENTS)
    ]
    signers = [SupporterFactory(email=f"signer{n}@example.org") for n in range(5)]
    for signer in signers:
        SignatureFactory(petition=mailing.petition, supporter=signer)
    SupporterFactory(email="gone@example.org", status="unsubscribed")
    mailing.audience_not_signed_petition = mailing.petition
    mailing.save(update_fields=["audience_not_signed_petition"])

    worker = celery_worker_factory(
        **worker_env, RALLY_SEND_BATCH_SIZE="7", RALLY_SEND_PARALLELISM="3"
    )
    mailing_send(mailing=mailing)

    def finished():
        mailing.refresh_from_db()
        return mailing.status == Mailing.Status.SENT

    wait_for(
        finished,
        timeout=60,
        message=lambda: f"mailing not sent; worker log:\n{worker.log()[-3000:]}",
    )

    counts = esp.counts()
    assert counts == {supporter.email: 1 for supporter in audience}
    for message in esp.messages():
        number = message["to"][0].removeprefix("reader").split("@")[0] if "to" in message else None
        text = message["text"]
        recipient = message["recipient"]
        number = recipient.removeprefix("reader").split("@")[0]
        assert f"Dear Reader{number}," in text
        assert f"Reader{number}" in message["html"]
    assert mailing_delivery_counts(mailing) == {
        **dict.fromkeys(Delivery.Status.values, 0),
        "sent": RECIPIENTS,
    }
