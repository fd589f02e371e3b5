"""The fake Postmark posts tracking webhooks about what it accepted, later, as Postmark does."""

from __future__ import annotations

import base64
import socket
import time
from collections import Counter

import pytest
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.core.mail import get_connection
from django.test import override_settings

from espfakes import FakePostmark
from tests.espfakes.messages import make_message
from tests.espfakes.webhook_receiver import webhook_receiver
from tests.processes import wait_for

AUTH = "rally-webhooks:test-secret"


def send(count: int, *, mailing_id: str = "7") -> list[str]:
    """Send `count` messages carrying Rally's metadata over one connection; return their ids."""
    connection = get_connection()
    ids = []
    for number in range(count):
        message = make_message(f"reader{number}@example.org", connection=connection)
        message.metadata = {"delivery_id": str(number), "mailing_id": mailing_id}
        message.tags = ["appeal"]
        message.send()
        ids.append(message.anymail_status.message_id)
    return ids


def parsed(payload: dict):
    """Read a payload as anymail's own Postmark tracking webhook does."""
    with override_settings(ANYMAIL={"WEBHOOK_SECRET": AUTH}):
        return PostmarkTrackingWebhookView().esp_to_anymail_event(payload)


def test_exact_shares_of_accepted_messages_draw_postmark_events_with_their_metadata(
    esp: FakePostmark,
) -> None:
    with webhook_receiver() as receiver:
        esp.configure(
            webhook_url=receiver.url(auth=AUTH),
            webhook_delivery_rate=1.0,
            webhook_bounce_rate=0.05,
            webhook_complaint_rate=0.03,
        )
        ids = send(90)
        # 90 × 5% bounce; 90 × 3% complain; the 86 that did not bounce are delivered.
        wait_for(
            lambda: esp.stats()["webhooks_posted"] == 4 + 2 + 86,
            timeout=30,
            message=lambda: esp.stats(),
        )
        received = list(receiver.received)

    assert esp.stats()["webhooks_queued"] == 92 and esp.stats()["webhooks_failed"] == 0
    assert Counter(webhook.payload["RecordType"] for webhook in received) == {
        "Delivery": 86,
        "Bounce": 4,
        "SpamComplaint": 2,
    }
    expected_auth = "Basic " + base64.b64encode(AUTH.encode()).decode()
    for webhook in received:
        assert webhook.path == "/anymail/postmark/tracking/"
        assert webhook.headers["Authorization"] == expected_auth
        assert webhook.headers["Content-Type"] == "application/json"
        payload = webhook.payload
        number = int(payload["Metadata"]["delivery_id"])
        assert payload["Metadata"] == {"delivery_id": str(number), "mailing_id": "7"}
        assert payload["MessageID"] == ids[number]
        assert payload["Tag"] == "appeal"

    events = {webhook.payload["RecordType"]: parsed(webhook.payload) for webhook in received}
    complaint, bounce, delivery = events["SpamComplaint"], events["Bounce"], events["Delivery"]
    assert (complaint.event_type, complaint.reject_reason) == ("complained", "spam")
    assert (bounce.event_type, bounce.reject_reason) == ("bounced", "bounced")
    assert (delivery.event_type, delivery.reject_reason) == ("delivered", None)
    for event in events.values():
        number = int(event.metadata["delivery_id"])
        assert event.recipient == f"reader{number}@example.org"
        assert event.message_id == ids[number]
        assert event.timestamp is not None
    # Bounces and complaints carry Postmark's event id, unique; deliveries carry none.
    assert complaint.event_id and bounce.event_id and delivery.event_id is None
    bounce_ids = [
        webhook.payload["ID"] for webhook in received if webhook.payload["RecordType"] != "Delivery"
    ]
    assert len(set(bounce_ids)) == 6
    # A complaint never falls on a message that bounced.
    per_message = Counter(
        (webhook.payload["MessageID"], webhook.payload["RecordType"]) for webhook in received
    )
    bounced = {message_id for message_id, kind in per_message if kind == "Bounce"}
    complained = {message_id for message_id, kind in per_message if kind == "SpamComplaint"}
    assert bounced and complained and not bounced & complained


def test_webhooks_go_out_after_the_send_was_answered_and_after_the_delay(
    esp: FakePostmark,
) -> None:
    with webhook_receiver() as receiver:
        esp.configure(webhook_url=receiver.url(auth=AUTH), webhook_complaint_rate=1.0)
        receiver.gate.clear()  # the endpoint holds the first webhook until released
        send(2)
        # Both sends were answered while the first webhook is still waiting for an answer.
        assert esp.stats()["accepted"] == 2
        assert receiver.received == []
        receiver.gate.set()
        wait_for(lambda: len(receiver.received) == 2, timeout=10, message="webhooks not posted")

        esp.configure(webhook_delay_ms=300)
        sent_at = time.monotonic()
        send(1)
        wait_for(lambda: len(receiver.received) == 3, timeout=10, message="webhook not posted")
        assert receiver.received[2].at - sent_at >= 0.3


def test_a_refused_webhook_is_not_retried_and_a_failing_endpoint_is(esp: FakePostmark) -> None:
    with webhook_receiver() as receiver:
        esp.configure(webhook_url=receiver.url(auth="wrong:secret"), webhook_bounce_rate=1.0)
        receiver.statuses = [401]
        send(1)
        wait_for(lambda: esp.stats()["webhooks_failed"] == 1, timeout=10, message=esp.stats)
        assert receiver.requests == 1 and receiver.received == []

        receiver.statuses = [500, 503]
        send(1)
        wait_for(lambda: esp.stats()["webhooks_posted"] == 1, timeout=10, message=esp.stats)
        assert receiver.requests == 4 and len(receiver.received) == 1


def test_an_unreachable_endpoint_counts_as_failed_after_retries(esp: FakePostmark) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    esp.configure(webhook_url=f"http://127.0.0.1:{port}/hooks", webhook_complaint_rate=1.0)
    send(1)
    wait_for(lambda: esp.stats()["webhooks_failed"] == 1, timeout=15, message=esp.stats)
    assert esp.stats()["webhooks_posted"] == 0


def test_webhook_options_are_checked(esp: FakePostmark) -> None:
    with pytest.raises(ValueError, match="http://"):
        esp.configure(webhook_url="https://example.org/hooks")
    with pytest.raises(ValueError, match="<= 1"):
        esp.configure(webhook_bounce_rate=0.6, webhook_complaint_rate=0.5)
    assert esp.options()["webhook_url"] == ""
