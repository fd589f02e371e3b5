"""Applying stored events: the right row, by precedence, suppression that cannot be misdirected."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from mailings.feedback import tasks
from mailings.feedback.processing import tracking_event_process, tracking_event_sweep
from mailings.models import Delivery, TrackingEvent
from supporters.models import Supporter
from supporters.services import supporter_suppress
from tests.factories import DeliveryFactory, SupporterFactory

from .conftest import process_stored_events
from .payloads import ESPS, Message, WebhookPost, message_id_for, metadata_for

pytestmark = pytest.mark.django_db


def post_event(post_webhook, kind, delivery, *, esp="postmark", serial=1, **overrides):
    message = Message(
        email=overrides.pop("email", delivery.supporter.email),
        message_id=overrides.pop("message_id", message_id_for(esp, serial)),
        metadata=overrides.pop("metadata", metadata_for(delivery)),
        serial=serial,
    )
    response = post_webhook(ESPS[esp](kind, message))
    assert response.status_code == 200, response.content
    return process_stored_events()


def test_a_forged_delivery_id_cannot_suppress_somebody_else(post_webhook):
    victim = DeliveryFactory(esp_message_id="")
    outcome = post_event(post_webhook, "complaint", victim, email="attacker@example.net")

    assert outcome == [TrackingEvent.Outcome.UNKNOWN_MESSAGE]
    assert Supporter.objects.get(pk=victim.supporter_id).status == Supporter.Status.SUBSCRIBED


def test_metadata_naming_another_mailing_does_not_match(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")
    metadata = {"delivery_id": str(delivery.pk), "mailing_id": str(delivery.mailing_id + 1)}

    assert post_event(post_webhook, "hard_bounce", delivery, metadata=metadata) == [
        TrackingEvent.Outcome.UNKNOWN_MESSAGE
    ]
    delivery.refresh_from_db()
    assert delivery.esp_status == ""


def test_a_later_weaker_event_never_hides_a_complaint(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")
    post_event(post_webhook, "complaint", delivery, serial=1)
    post_event(post_webhook, "hard_bounce", delivery, serial=2)
    post_event(post_webhook, "delivered", delivery, serial=3)

    delivery.refresh_from_db()
    assert delivery.esp_status == Delivery.EspStatus.COMPLAINED
    assert Supporter.objects.get(pk=delivery.supporter_id).status == Supporter.Status.COMPLAINED


def test_a_complaint_after_a_bounce_makes_the_supporter_a_complainer(post_webhook):
    first = DeliveryFactory(esp_message_id="")
    second = DeliveryFactory(supporter=first.supporter, esp_message_id="")
    post_event(post_webhook, "hard_bounce", first, serial=1)
    post_event(post_webhook, "complaint", second, serial=2)

    supporter = Supporter.objects.get(pk=first.supporter_id)
    assert supporter.status == Supporter.Status.COMPLAINED
    assert "SpamComplaint" in supporter.suppression_reason or "spam" in supporter.suppression_reason


def test_a_bounce_for_an_unsubscribed_supporter_marks_the_address_dead(post_webhook):
    delivery = DeliveryFactory(esp_message_id="", supporter__status="unsubscribed")
    post_event(post_webhook, "hard_bounce", delivery)

    supporter = Supporter.objects.get(pk=delivery.supporter_id)
    assert supporter.status == Supporter.Status.BOUNCED
    assert supporter.suppressed_at is not None


def test_an_event_about_an_erased_supporter_changes_nothing_and_keeps_no_address(post_webhook):
    delivery = DeliveryFactory(
        esp_message_id="", supporter__email="erased-1@invalid", supporter__status="erased"
    )
    outcome = post_event(post_webhook, "complaint", delivery, email="was-them@example.org")

    assert outcome == [TrackingEvent.Outcome.IGNORED]
    event = TrackingEvent.objects.get()
    assert (event.recipient, event.description, event.payload) == ("", "", {})
    assert event.delivery_id == delivery.pk
    assert Supporter.objects.get(pk=delivery.supporter_id).status == Supporter.Status.ERASED


def test_an_unsubscribe_at_the_esp_unsubscribes_the_supporter(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")
    raw = {
        "RecordType": "SubscriptionChange",
        "MessageID": message_id_for("postmark", 1),
        "ServerID": 23,
        "ChangedAt": "2026-11-30T12:00:00Z",
        "Recipient": delivery.supporter.email,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "appeal",
        "Metadata": metadata_for(delivery),
    }
    assert (
        post_webhook(WebhookPost("/anymail/postmark/tracking/", json.dumps(raw))).status_code == 200
    )
    assert process_stored_events() == [TrackingEvent.Outcome.APPLIED]

    supporter = Supporter.objects.get(pk=delivery.supporter_id)
    assert supporter.status == Supporter.Status.UNSUBSCRIBED
    assert supporter.unsubscribed_at is not None


@pytest.mark.parametrize(
    ("postmark_type", "supporter_status"),
    [
        ("DMARCPolicy", Supporter.Status.SUBSCRIBED),
        ("Blocked", Supporter.Status.SUBSCRIBED),
        ("ManuallyDeactivated", Supporter.Status.BOUNCED),
        ("BadEmailAddress", Supporter.Status.BOUNCED),
    ],
)
def test_a_refusal_suppresses_only_when_it_is_about_the_recipient(
    post_webhook, postmark_type, supporter_status
):
    delivery = DeliveryFactory(esp_message_id="")
    raw = {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": postmark_type,
        "MessageID": message_id_for("postmark", 1),
        "Email": delivery.supporter.email,
        "BouncedAt": "2026-11-30T12:00:00Z",
        "Description": postmark_type,
        "Metadata": metadata_for(delivery),
    }
    assert (
        post_webhook(WebhookPost("/anymail/postmark/tracking/", json.dumps(raw))).status_code == 200
    )
    process_stored_events()

    delivery.refresh_from_db()
    assert delivery.esp_status == Delivery.EspStatus.REJECTED
    assert Supporter.objects.get(pk=delivery.supporter_id).status == supporter_status


def test_processing_twice_applies_once(post_webhook, settings):
    settings.RALLY_SOFT_BOUNCE_LIMIT = 1
    delivery = DeliveryFactory(esp_message_id="")
    message = Message(
        email=delivery.supporter.email,
        message_id=message_id_for("postmark", 1),
        metadata=metadata_for(delivery),
    )
    post_webhook(ESPS["postmark"]("soft_bounce", message))
    event = TrackingEvent.objects.get()

    assert tracking_event_process(event_pk=event.pk) == TrackingEvent.Outcome.APPLIED
    first = Supporter.objects.get(pk=delivery.supporter_id).suppressed_at
    assert tracking_event_process(event_pk=event.pk) == ""
    assert Supporter.objects.get(pk=delivery.supporter_id).suppressed_at == first


def test_the_sweep_queues_again_only_events_left_unprocessed_for_a_minute(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.tracking_events_process_task, "delay", queued.append)
    now = timezone.now()

    def event(event_id, *, age, processed=False):
        return TrackingEvent.objects.create(
            esp="postmark",
            event_id=event_id,
            event_type="delivered",
            occurred_at=now,
            processed_at=now if processed else None,
        )

    lost = event("lost", age=120)
    event("fresh", age=5)
    done = event("done", age=120, processed=True)
    TrackingEvent.objects.filter(pk__in=[lost.pk, done.pk]).update(
        created_at=now - timedelta(minutes=2)
    )

    assert tracking_event_sweep() == 1
    assert queued == [[lost.pk]]


def test_supporter_suppress_never_touches_an_erased_supporter_nor_weakens_a_complaint():
    erased = SupporterFactory(status=Supporter.Status.ERASED)
    complainer = SupporterFactory(status=Supporter.Status.COMPLAINED)

    assert not supporter_suppress(supporter_id=erased.pk, status="complained", reason="x")
    assert not supporter_suppress(supporter_id=complainer.pk, status="bounced", reason="x")
    assert not supporter_suppress(supporter_id=complainer.pk, status="unsubscribed", reason="x")
    with pytest.raises(ValueError):
        supporter_suppress(supporter_id=complainer.pk, status="subscribed", reason="x")
    assert Supporter.objects.get(pk=erased.pk).status == Supporter.Status.ERASED
    assert Supporter.objects.get(pk=complainer.pk).status == Supporter.Status.COMPLAINED


def test_a_hard_bounce_or_complaint_asks_the_breaker_once(post_webhook, monkeypatch):
    from mailings.feedback import processing

    asked = []
    monkeypatch.setattr(
        processing, "mailing_check_esp_feedback", lambda *, mailing_id: asked.append(mailing_id)
    )
    delivery = DeliveryFactory(esp_message_id="")
    post_event(post_webhook, "delivered", delivery, serial=1)
    post_event(post_webhook, "hard_bounce", delivery, serial=2)
    post_event(post_webhook, "hard_bounce", delivery, serial=3)
    post_event(post_webhook, "complaint", delivery, serial=4)

    assert asked == [delivery.mailing_id, delivery.mailing_id]


def test_an_esp_open_sets_the_first_open_only(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")
    for serial in (1, 2):
        raw = {
            "RecordType": "Open",
            "FirstOpen": serial == 1,
            "MessageID": message_id_for("postmark", 1),
            "ReceivedAt": f"2026-11-30T12:0{serial}:00Z",
            "Recipient": delivery.supporter.email,
            "Metadata": metadata_for(delivery),
        }
        webhook = WebhookPost("/anymail/postmark/tracking/", json.dumps(raw))
        assert post_webhook(webhook).status_code == 200
    assert process_stored_events() == [TrackingEvent.Outcome.APPLIED] * 2

    delivery.refresh_from_db()
    assert delivery.opened_at.minute == 1
    assert delivery.esp_status == ""
