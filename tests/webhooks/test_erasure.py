"""An erased supporter's events carry no personal data: neither those still waiting to be
delivered when they are erased, nor the supporter.erased event itself."""

import pytest

from privacy.services import supporter_erase
from supporters.services import supporter_unsubscribe
from tests.factories import SupporterFactory
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import (
    webhook_delivery_attempt,
    webhook_subscription_create,
    webhook_supporter_events_record,
)

from .conftest import SECRET

pytestmark = pytest.mark.django_db

PERSONAL = ("maria.petrova", "Maria", "Petrova", "SW1A 1AA")


def test_erasure_scrubs_pending_events_and_announces_itself_by_identifier_alone(
    endpoint, django_capture_on_commit_callbacks
):
    webhook_subscription_create(
        url=endpoint.url(), events=["supporter.unsubscribed", "supporter.erased"], secret=SECRET
    )
    supporter = SupporterFactory(
        email="maria.petrova@example.org", first_name="Maria", last_name="Petrova",
        postcode="SW1A 1AA", country="GB",
    )  # fmt: skip
    identifier = f"rally:{supporter.uuid}"
    with django_capture_on_commit_callbacks(execute=True):
        supporter_unsubscribe(supporter_id=supporter.pk)
    pending = WebhookDelivery.objects.get()
    assert pending.event.payload["data"]["email_addresses"][0]["address"] == supporter.email
    # An earlier attempt's answer quoted what it was sent.
    WebhookDelivery.objects.filter(pk=pending.pk).update(
        response_body='{"error": "maria.petrova@example.org is not in our CRM"}'
    )

    with django_capture_on_commit_callbacks(execute=True):
        supporter_erase(supporter_id=supporter.pk)

    unsubscribed = WebhookEvent.objects.get(type="supporter.unsubscribed")
    assert unsubscribed.payload["data"] == {"identifiers": [identifier]}
    assert unsubscribed.payload["type"] == "supporter.unsubscribed"
    assert unsubscribed.payload["id"] == str(unsubscribed.event_id)
    erased = WebhookEvent.objects.get(type="supporter.erased")
    assert erased.payload["data"] == {"identifiers": [identifier]}
    assert WebhookDelivery.objects.get(pk=pending.pk).response_body == ""
    for event in WebhookEvent.objects.all():
        for text in PERSONAL:
            assert text.lower() not in str(event.payload).lower()

    # What the integrator then receives names nobody either.
    for delivery in WebhookDelivery.objects.all():
        webhook_delivery_attempt(delivery_id=delivery.pk)
    assert endpoint.count() == 2
    for received in endpoint.all():
        for text in PERSONAL:
            assert text.lower().encode() not in received.body.lower()
        assert received.payload["data"] == {"identifiers": [identifier]}


def test_an_event_recorded_after_the_erasure_names_nobody(endpoint):
    """A change committed just before an erasure, its event recorded just after, stays quiet."""
    webhook_subscription_create(
        url=endpoint.url(), events=["supporter.unsubscribed"], secret=SECRET
    )
    supporter = SupporterFactory(email="late@example.org")
    supporter_erase(supporter_id=supporter.pk)
    assert (
        webhook_supporter_events_record(
            event_type="supporter.unsubscribed", supporter_ids=[supporter.pk]
        )
        == []
    )
    assert not WebhookEvent.objects.exists()
