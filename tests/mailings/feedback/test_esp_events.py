"""Each ESP's documented events, posted to anymail's real webhook URLs, change the ledger."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from mailings.models import Delivery, TrackingEvent
from supporters.models import Supporter
from tests.factories import DeliveryFactory

from .conftest import process_stored_events
from .payloads import ESPS, KINDS, Message, WebhookPost, message_id_for, metadata_for

pytestmark = [
    pytest.mark.django_db,
    # anymail warns that it no longer supports SendGrid officially; its webhook still works.
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

EXPECTED = {
    # kind: (Delivery.esp_status, Supporter.status after it)
    "delivered": (Delivery.EspStatus.DELIVERED, Supporter.Status.SUBSCRIBED),
    "hard_bounce": (Delivery.EspStatus.BOUNCED, Supporter.Status.BOUNCED),
    "soft_bounce": (Delivery.EspStatus.SOFT_BOUNCED, Supporter.Status.SUBSCRIBED),
    "complaint": (Delivery.EspStatus.COMPLAINED, Supporter.Status.COMPLAINED),
    "click": ("", Supporter.Status.SUBSCRIBED),
}


def sent_delivery(esp: str, serial: int = 1) -> Delivery:
    # No ESP message id on the row: the event must find it by the metadata alone.
    return DeliveryFactory(esp_message_id="", supporter__email=f"reader{serial}@example.org")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("esp", ESPS)
def test_each_esp_event_is_stored_once_and_applied_to_its_delivery(post_webhook, esp, kind):
    delivery = sent_delivery(esp)
    message = Message(
        email=delivery.supporter.email,
        message_id=message_id_for(esp, 1),
        metadata=metadata_for(delivery),
    )

    response = post_webhook(ESPS[esp](kind, message))

    assert response.status_code == 200, response.content
    event = TrackingEvent.objects.get()
    assert event.esp == esp
    assert event.recipient == delivery.supporter.email
    assert event.metadata["delivery_id"] == str(delivery.pk)
    assert isinstance(event.payload, dict)
    assert process_stored_events() == [TrackingEvent.Outcome.APPLIED]

    event.refresh_from_db()
    delivery.refresh_from_db()
    supporter = Supporter.objects.get(pk=delivery.supporter_id)
    assert event.delivery_id == delivery.pk
    assert event.processed_at is not None
    esp_status, supporter_status = EXPECTED[kind]
    assert delivery.esp_status == esp_status
    assert supporter.status == supporter_status
    if supporter_status != Supporter.Status.SUBSCRIBED:
        assert supporter.suppressed_at is not None
        assert esp in supporter.suppression_reason
    if kind == "click":
        assert delivery.clicked_at is not None
    if esp_status:
        assert delivery.esp_status_at is not None


@pytest.mark.parametrize("esp", ESPS)
def test_an_event_without_our_metadata_finds_its_delivery_by_the_esp_message_id(post_webhook, esp):
    message_id = message_id_for(esp, 7)
    delivery = DeliveryFactory(esp_message_id=message_id, supporter__email="anna@example.org")
    message = Message(email="anna@example.org", message_id=message_id, metadata={})

    assert post_webhook(ESPS[esp]("hard_bounce", message)).status_code == 200
    assert process_stored_events() == [TrackingEvent.Outcome.APPLIED]

    delivery.refresh_from_db()
    assert delivery.esp_status == Delivery.EspStatus.BOUNCED
    assert Supporter.objects.get(pk=delivery.supporter_id).status == Supporter.Status.BOUNCED


def test_soft_bounces_suppress_the_supporter_once_the_limit_is_reached(post_webhook, settings):
    settings.RALLY_SOFT_BOUNCE_LIMIT = 3
    first = sent_delivery("postmark")
    supporter = first.supporter
    more = [DeliveryFactory(supporter=supporter, esp_message_id="") for _ in range(2)]
    deliveries = [first, *more]

    for number, delivery in enumerate(deliveries, start=1):
        message = Message(
            email=supporter.email,
            message_id=message_id_for("postmark", number),
            metadata=metadata_for(delivery),
            serial=number,
        )
        assert post_webhook(ESPS["postmark"]("soft_bounce", message)).status_code == 200
        process_stored_events()
        supporter.refresh_from_db()
        expected = Supporter.Status.BOUNCED if number == 3 else Supporter.Status.SUBSCRIBED
        assert supporter.status == expected, f"after soft bounce {number}"
    assert "soft bounces" in supporter.suppression_reason


def test_soft_bounces_of_one_message_count_once(post_webhook, settings):
    settings.RALLY_SOFT_BOUNCE_LIMIT = 2
    delivery = sent_delivery("brevo")
    for serial in range(3):
        message = Message(
            email=delivery.supporter.email,
            message_id=message_id_for("brevo", 1),
            metadata=metadata_for(delivery),
            serial=serial,
        )
        assert post_webhook(ESPS["brevo"]("soft_bounce", message)).status_code == 200
    assert process_stored_events() == [TrackingEvent.Outcome.APPLIED] * 3
    assert Supporter.objects.get(pk=delivery.supporter_id).status == Supporter.Status.SUBSCRIBED


def test_old_soft_bounces_outside_the_window_do_not_count(post_webhook, settings):
    settings.RALLY_SOFT_BOUNCE_LIMIT = 2
    settings.RALLY_SOFT_BOUNCE_WINDOW_DAYS = 30
    old = sent_delivery("mailjet")
    Delivery.objects.filter(pk=old.pk).update(
        esp_status=Delivery.EspStatus.SOFT_BOUNCED,
        esp_status_at=timezone.now() - timedelta(days=31),
    )
    recent = DeliveryFactory(supporter=old.supporter, esp_message_id="")
    message = Message(
        email=old.supporter.email,
        message_id=message_id_for("mailjet", 2),
        metadata=metadata_for(recent),
    )
    post_webhook(ESPS["mailjet"]("soft_bounce", message))
    process_stored_events()
    assert Supporter.objects.get(pk=old.supporter_id).status == Supporter.Status.SUBSCRIBED


def test_a_mailjet_greylisting_bounce_that_mailjet_retries_is_no_bounce_at_all(
    post_webhook, settings
):
    # One real soft bounce already: a greylisting counted as another would suppress at 2.
    settings.RALLY_SOFT_BOUNCE_LIMIT = 2
    earlier = sent_delivery("mailjet")
    Delivery.objects.filter(pk=earlier.pk).update(
        esp_status=Delivery.EspStatus.SOFT_BOUNCED, esp_status_at=timezone.now()
    )
    delivery = DeliveryFactory(supporter=earlier.supporter, esp_message_id="")
    # Mailjet's greylisting "bounce", as anymail's own tests (test_mailjet_webhooks.py) post it:
    # anymail reports it as "deferred", because Mailjet tries again.
    greylisted = {
        "event": "bounce",
        "time": 1498093527,
        "MessageID": 12345678901234567,
        "email": earlier.supporter.email,
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": "",
        "blocked": True,
        "hard_bounce": False,
        "error_related_to": "domain",
        "error": "greylisted",
        "Payload": json.dumps(metadata_for(delivery)),
    }

    response = post_webhook(WebhookPost("/anymail/mailjet/tracking/", json.dumps([greylisted])))

    assert response.status_code == 200
    assert TrackingEvent.objects.get().event_type == "deferred"
    process_stored_events()
    delivery.refresh_from_db()
    assert delivery.esp_status != Delivery.EspStatus.SOFT_BOUNCED
    assert Supporter.objects.get(pk=earlier.supporter_id).status == Supporter.Status.SUBSCRIBED

    # Mailjet's retry gets through: the message is delivered.
    message = Message(
        email=earlier.supporter.email,
        message_id="12345678901234567",
        metadata=metadata_for(delivery),
        serial=5,
    )
    assert post_webhook(ESPS["mailjet"]("delivered", message)).status_code == 200
    process_stored_events()
    delivery.refresh_from_db()
    assert delivery.esp_status == Delivery.EspStatus.DELIVERED
