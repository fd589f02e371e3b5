"""Each event raised by the real code that makes the change, delivered by a real worker.

A supporter signs through the petition form, leaves through their unsubscribe link, signs
again, bounces (the ESP's webhook, processed by the worker), and is erased; a mailing is sent
through the send queue to a fake Postmark. Each step reaches the integrator's endpoint, signed.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.hal import site_base_url
from api.representations.actions import message_representation, signature_representation
from api.representations.people import person_representation
from campaigns.links import make_confirmation_token
from campaigns.models import Signature
from espfakes import FakePostmark
from mailings.models import Mailing
from mailings.sending import mailing_send
from mailings.sending.sunset import mailing_apply_sunset
from supporters.models import Supporter
from supporters.services import supporter_unsubscribe
from supporters.tokens import make_unsubscribe_token
from tests.factories import DeliveryFactory, MailingFactory, PetitionFactory, SupporterFactory
from tests.mailings.feedback.payloads import Message, basic_auth, message_id_for, metadata_for
from tests.mailings.feedback.payloads import postmark as postmark_webhook
from tests.processes import wait_for
from tests.sending_helpers import make_audience, postmark_env, wait_until_finished
from tests.webhooks.receiver import signature_is_valid
from webhooks.event_types import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from webhooks.services import webhook_subscription_create

from .conftest import SECRET

SIGNER = {
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann.lee@example.org",
    "country": "GB",
    "postcode": "N1 9GU",
    "consent": "on",
}


def received_event(endpoint, event_type: str, worker, count: int = 1):
    def arrived():
        found = endpoint.of_type(event_type)
        return found if len(found) >= count else None

    found = wait_for(
        arrived,
        timeout=60,
        message=lambda: f"no {event_type} received; worker log:\n{worker.log()[-3000:]}",
    )
    for received in found:
        assert signature_is_valid(
            secret=SECRET, header=received.headers["Rally-Signature"], body=received.body
        )
    return found[count - 1].payload


@pytest.mark.django_db(transaction=True)
def test_a_supporters_life_reaches_the_integrator_event_by_event(endpoint, webhook_worker):
    webhook_subscription_create(url=endpoint.url(), events=list(EVENT_TYPES), secret=SECRET)
    worker = webhook_worker()
    client = Client()
    petition = PetitionFactory()

    # Signed through the form.
    assert client.post(f"/petitions/{petition.slug}/", SIGNER).status_code == 302
    signed = received_event(endpoint, "signature.created", worker)
    signature = Signature.objects.get()
    supporter = Supporter.objects.get()
    assert signed["data"] == signature_representation(signature, base_url=site_base_url())

    # Left through the unsubscribe link (a mail client's one-click POST).
    response = client.post(
        f"/unsubscribe/{make_unsubscribe_token(supporter.pk)}/", {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    left = received_event(endpoint, "supporter.unsubscribed", worker)
    assert left["data"]["identifiers"] == [f"rally:{supporter.uuid}"]
    assert left["data"]["email_addresses"][0]["status"] == "unsubscribed"

    # Came back: a fresh signature, with consent, on a petition that asks signers to confirm
    # their address; the confirmation link subscribes them again.
    other = PetitionFactory(requires_confirmation=True)
    assert client.post(f"/petitions/{other.slug}/", SIGNER).status_code == 302
    received_event(endpoint, "signature.created", worker, count=2)
    unconfirmed = Signature.objects.get(petition=other)
    token = make_confirmation_token(signature_id=unconfirmed.pk)
    assert client.post(f"/petitions/{other.slug}/confirm/{token}/").status_code in (200, 302)
    back = received_event(endpoint, "supporter.subscribed", worker)
    assert back["data"]["email_addresses"][0]["status"] == "subscribed"

    # Bounced: the ESP's webhook, processed by the worker on the tracking queue.
    delivery = DeliveryFactory(supporter=supporter, esp_message_id="")
    bounce = postmark_webhook(
        "hard_bounce",
        Message(
            email=supporter.email,
            message_id=message_id_for("postmark", 1),
            metadata=metadata_for(delivery),
        ),
    )
    response = client.generic(
        "POST", bounce.path, bounce.body.encode(), content_type=bounce.content_type,
        **basic_auth(),
    )  # fmt: skip
    assert response.status_code == 200
    suppressed = received_event(endpoint, "supporter.suppressed", worker)
    assert suppressed["data"]["email_addresses"][0]["status"] == "bouncing"

    # Erased: the event names them by their identifier alone.
    call_command("supporter_erase", supporter.email, stdout=io.StringIO())
    erased = received_event(endpoint, "supporter.erased", worker)
    assert erased["data"] == {"identifiers": [f"rally:{supporter.uuid}"]}
    assert set(erased) == {"id", "type", "created", "data"}

    # Each event once, each to the one subscription, and all delivered.
    assert sorted(WebhookEvent.objects.values_list("type", flat=True)) == sorted(
        [
            "signature.created", "signature.created", "supporter.unsubscribed",
            "supporter.subscribed", "supporter.suppressed", "supporter.erased",
        ]
    )  # fmt: skip
    wait_for(
        lambda: not WebhookDelivery.objects.exclude(status="succeeded").exists(),
        timeout=60,
        message=worker.log,
    )
    # Nothing kept, and nothing delivered from now on, names them.
    for event in WebhookEvent.objects.all():
        assert "ann" not in str(event.payload).lower()
        assert "lee" not in str(event.payload).lower()


@pytest.mark.django_db(transaction=True)
def test_a_mailing_sent_through_the_queue_is_announced_once(endpoint, webhook_worker):
    webhook_subscription_create(url=endpoint.url(), events=["mailing.sent"], secret=SECRET)
    make_audience(5)
    mailing = MailingFactory()
    with FakePostmark() as esp:
        worker = webhook_worker(**postmark_env(esp))
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker])
        sent = received_event(endpoint, "mailing.sent", worker)
    assert mailing.status == Mailing.Status.SENT
    mailing.refresh_from_db()
    assert (
        sent["data"]["identifiers"]
        == message_representation(mailing, base_url=site_base_url())["identifiers"]
    )
    assert WebhookEvent.objects.filter(type="mailing.sent").count() == 1


@pytest.mark.django_db
def test_a_change_rolled_back_sends_nothing(django_capture_on_commit_callbacks):
    webhook_subscription_create(
        url="https://crm.example.org/hook", events=["supporter.unsubscribed"], secret=SECRET
    )
    supporter = SupporterFactory()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        assert supporter_unsubscribe(supporter_id=supporter.pk)
        raise RuntimeError("the request failed after the unsubscribe")
    assert callbacks == []
    assert not WebhookEvent.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert supporter_unsubscribe(supporter_id=supporter.pk)
    event = WebhookEvent.objects.get()
    assert event.type == "supporter.unsubscribed" and event.supporter_id == supporter.pk
    supporter.refresh_from_db()
    assert event.payload["data"] == person_representation(supporter, base_url=site_base_url())


@pytest.mark.django_db
def test_an_event_nobody_hears_records_nothing(client, django_capture_on_commit_callbacks):
    webhook_subscription_create(
        url="https://crm.example.org/hook", events=["mailing.sent"], secret=SECRET
    )
    supporter = SupporterFactory()
    petition = PetitionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        supporter_unsubscribe(supporter_id=supporter.pk)
        assert client.post(f"/petitions/{petition.slug}/", SIGNER).status_code == 302
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_signing_asks_nothing_of_the_webhooks_tables_while_its_answer_is_cached(client):
    """With no subscription the cost of the events is a look-up in memory, not a query."""
    petition = PetitionFactory()
    assert client.post(f"/petitions/{petition.slug}/", SIGNER).status_code == 302
    with CaptureQueriesContext(transaction.get_connection()) as queries:
        for n in range(3):
            signer = {**SIGNER, "email": f"signer{n}@example.org"}
            assert client.post(f"/petitions/{petition.slug}/", signer).status_code == 302
    assert Signature.objects.count() == 4
    touching = [query["sql"] for query in queries if "webhooks_" in query["sql"]]
    assert touching == []
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_the_sunset_flow_announces_each_supporter_it_suppresses(
    settings, django_capture_on_commit_callbacks
):
    webhook_subscription_create(
        url="https://crm.example.org/hook", events=["supporter.suppressed"], secret=SECRET
    )
    silent = SupporterFactory(email="silent@example.org")
    mailing = MailingFactory(
        purpose=Mailing.Purpose.REPERMISSION,
        status=Mailing.Status.SENT,
        finished_at=timezone.now() - timedelta(days=settings.RALLY_SUNSET_GRACE_DAYS, hours=1),
    )
    DeliveryFactory(mailing=mailing, supporter=silent, sent_at=mailing.finished_at)
    with django_capture_on_commit_callbacks(execute=True):
        assert mailing_apply_sunset(mailing_id=mailing.pk) == 1
    event = WebhookEvent.objects.get()
    assert event.type == "supporter.suppressed" and event.supporter_id == silent.pk
    assert event.payload["data"]["identifiers"] == [f"rally:{silent.uuid}"]
    assert WebhookDelivery.objects.filter(event=event).count() == 1


@pytest.mark.django_db
def test_a_database_that_cannot_say_who_listens_costs_the_change_nothing(caplog):
    """The question is asked in a savepoint: failing, it leaves the caller's transaction whole."""
    supporter = SupporterFactory()
    with connection.cursor() as cursor:
        # Gone for this test's transaction alone, as if its migration had not been run.
        cursor.execute(f"ALTER TABLE {WebhookSubscription._meta.db_table} RENAME TO webhooks_away")
    with transaction.atomic():
        assert supporter_unsubscribe(supporter_id=supporter.pk)
        supporter.refresh_from_db()  # the transaction still answers
    assert supporter.status == Supporter.Status.UNSUBSCRIBED
    assert "Could not read the webhook subscriptions" in caplog.text
