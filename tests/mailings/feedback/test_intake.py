"""The webhook's front door: authenticated, fast, each event stored once, bad posts refused."""

import json

import pytest
from django.urls import reverse

from mailings.feedback import tasks
from mailings.feedback import urls as feedback_urls
from mailings.feedback.intake import NOT_ENABLED, PAYLOAD_MAX_CHARS
from mailings.models import Delivery, TrackingEvent
from supporters.models import Supporter
from tests.factories import DeliveryFactory

from .conftest import process_stored_events
from .payloads import (
    ESPS,
    MAILGUN_SIGNING_KEY,
    Message,
    WebhookPost,
    basic_auth,
    mailgun_sign,
    message_id_for,
    metadata_for,
    sns_post,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]


def complaint_for(delivery, esp: str = "postmark") -> WebhookPost:
    message = Message(
        email=delivery.supporter.email,
        message_id=message_id_for(esp, 1),
        metadata=metadata_for(delivery),
    )
    return ESPS[esp]("complaint", message)


@pytest.mark.parametrize("esp", ESPS)
def test_a_replayed_event_is_stored_once_queued_once_and_applied_once(
    post_webhook, django_capture_on_commit_callbacks, esp
):
    delivery = DeliveryFactory(esp_message_id="")
    webhook = complaint_for(delivery, esp)

    with django_capture_on_commit_callbacks() as first_queued:
        assert post_webhook(webhook).status_code == 200
    with django_capture_on_commit_callbacks() as replay_queued:
        assert post_webhook(webhook).status_code == 200

    assert TrackingEvent.objects.count() == 1
    assert (len(first_queued), len(replay_queued)) == (1, 0)
    event_pk = TrackingEvent.objects.get().pk
    assert process_stored_events() == [TrackingEvent.Outcome.APPLIED]
    # A second task for the same event (the sweep, a redelivery) finds it done.
    assert tasks.tracking_events_process_task.run([event_pk]) is None
    assert TrackingEvent.objects.get().outcome == TrackingEvent.Outcome.APPLIED


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param(basic_auth("rally-webhooks:wrong"), id="wrong-secret"),
        pytest.param({"HTTP_AUTHORIZATION": "Basic !!!not-base64"}, id="garbled-header"),
    ],
)
@pytest.mark.parametrize("esp", ESPS)
def test_a_post_without_the_webhook_secret_is_refused_and_nothing_stored(post_webhook, esp, auth):
    delivery = DeliveryFactory(esp_message_id="")

    response = post_webhook(complaint_for(delivery, esp), auth=auth)

    assert response.status_code in (401, 403)
    assert not TrackingEvent.objects.exists()
    assert Supporter.objects.get(pk=delivery.supporter_id).status == Supporter.Status.SUBSCRIBED


def test_a_mailgun_post_with_a_wrong_signature_is_refused(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")
    payload = json.loads(complaint_for(delivery, "mailgun").body)
    mailgun_sign(payload, key="not-" + MAILGUN_SIGNING_KEY)

    response = post_webhook(WebhookPost("/anymail/mailgun/tracking/", json.dumps(payload)))

    assert response.status_code == 403
    assert not TrackingEvent.objects.exists()


MALFORMED = [
    ("postmark", "not json at all", "application/json"),
    ("postmark", "null", "application/json"),
    ("postmark", '{"RecordType": "Bounce", "BouncedAt": 12}', "application/json"),
    ("postmark", "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"), "application/json"),
    ("sendgrid", '{"event": "bounce"}', "application/json"),
    ("sendgrid", '[{"email": "a@example.org"}]', "application/json"),
    ("sendgrid", "[1, 2", "application/json"),
    ("mailjet", '"a string"', "application/json"),
    ("mailjet", '[{"time": 1}]', "application/json"),
    ("brevo", "[]", "application/json"),
    ("mailgun", '{"signature": "none"}', "application/json"),
    ("mailgun", "event=delivered", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("esp", "body", "content_type"), MALFORMED)
def test_a_malformed_body_is_a_4xx_and_nothing_is_stored(post_webhook, esp, body, content_type):
    response = post_webhook(WebhookPost(f"/anymail/{esp}/tracking/", body, content_type))

    assert 400 <= response.status_code < 500
    assert not TrackingEvent.objects.exists()


def test_a_malformed_sns_notification_is_a_4xx_and_nothing_is_stored(post_webhook):
    webhook = sns_post({}, "sns-1")
    bad = json.loads(webhook.body)
    bad["Message"] = "{not json"
    webhook.body = json.dumps(bad)
    assert post_webhook(webhook).status_code == 400

    webhook.body = "{broken"
    assert post_webhook(webhook).status_code == 400
    assert not TrackingEvent.objects.exists()


def test_an_sns_subscription_confirmation_is_answered_without_storing_or_calling_aws(
    post_webhook,
):
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:rally-ses-events",
        "Message": "You have chosen to subscribe to the topic …",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "2026-11-30T12:00:00.000Z",
    }
    webhook = WebhookPost(
        "/anymail/amazon_ses/tracking/",
        json.dumps(confirmation),
        content_type="text/plain; charset=UTF-8",
        headers={
            "HTTP_X_AMZ_SNS_MESSAGE_ID": confirmation["MessageId"],
            "HTTP_X_AMZ_SNS_MESSAGE_TYPE": confirmation["Type"],
        },
    )

    assert post_webhook(webhook).status_code == 200
    assert not TrackingEvent.objects.exists()


def test_an_sns_post_without_credentials_gets_the_401_sns_needs_to_send_them(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")
    response = post_webhook(complaint_for(delivery, "amazon_ses"), auth={})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_an_event_for_an_unknown_message_is_stored_and_harmless(post_webhook):
    bystander = DeliveryFactory(esp_message_id="")
    message = Message(
        email="stranger@example.net",
        message_id="not-a-message-of-ours",
        metadata={"campaign": "someone else's"},
    )

    assert post_webhook(ESPS["postmark"]("complaint", message)).status_code == 200
    assert process_stored_events() == [TrackingEvent.Outcome.UNKNOWN_MESSAGE]

    event = TrackingEvent.objects.get()
    assert event.delivery is None and event.processed_at is not None
    bystander.refresh_from_db()
    assert bystander.esp_status == ""
    assert Supporter.objects.get(pk=bystander.supporter_id).status == Supporter.Status.SUBSCRIBED


def test_a_batch_post_stores_every_event_in_it(post_webhook):
    deliveries = [DeliveryFactory(esp_message_id="") for _ in range(3)]
    events = [
        json.loads(
            ESPS["sendgrid"](
                "delivered",
                Message(
                    email=delivery.supporter.email,
                    message_id=message_id_for("sendgrid", n),
                    metadata=metadata_for(delivery),
                    serial=n,
                ),
            ).body
        )[0]
        for n, delivery in enumerate(deliveries)
    ]
    webhook = WebhookPost("/anymail/sendgrid/tracking/", json.dumps(events))

    assert post_webhook(webhook).status_code == 200
    assert process_stored_events() == [TrackingEvent.Outcome.APPLIED] * 3
    assert set(Delivery.objects.values_list("esp_status", flat=True)) == {"delivered"}


def test_events_without_an_esp_id_are_told_apart_by_time_and_deduplicated(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")

    for serial in (1, 2, 2):
        message = Message(
            email=delivery.supporter.email,
            message_id=message_id_for("mailjet", 1),
            metadata=metadata_for(delivery),
            serial=serial,
        )
        assert post_webhook(ESPS["mailjet"]("click", message)).status_code == 200

    assert TrackingEvent.objects.count() == 2
    assert all(
        id_.startswith("sha256:")
        for id_ in TrackingEvent.objects.values_list("event_id", flat=True)
    )


def test_nul_characters_and_huge_bodies_are_stored_safely(post_webhook):
    delivery = DeliveryFactory(esp_message_id="")
    message = Message(
        email=delivery.supporter.email,
        message_id=message_id_for("postmark", 1),
        metadata=metadata_for(delivery),
    )
    raw = json.loads(ESPS["postmark"]("soft_bounce", message).body)
    raw["Description"] = "full\x00mailbox"
    raw["Content"] = "x" * (PAYLOAD_MAX_CHARS * 2)

    response = post_webhook(WebhookPost("/anymail/postmark/tracking/", json.dumps(raw)))

    assert response.status_code == 200
    event = TrackingEvent.objects.get()
    assert event.description == "fullmailbox"
    assert event.payload["Content"].endswith("[truncated]")
    assert len(json.dumps(event.payload)) <= PAYLOAD_MAX_CHARS
    # What tells a soft bounce from a hard one is kept.
    process_stored_events()
    delivery.refresh_from_db()
    assert delivery.esp_status == Delivery.EspStatus.SOFT_BOUNCED


def test_a_body_of_countless_small_fields_is_kept_as_an_excerpt(post_webhook):
    raw = {"RecordType": "Open", "MessageID": "m-1", "Recipient": "a@example.org"}
    raw.update({f"field{n}": "y" * 50 for n in range(2_000)})

    assert (
        post_webhook(WebhookPost("/anymail/postmark/tracking/", json.dumps(raw))).status_code == 200
    )
    payload = TrackingEvent.objects.get().payload
    assert payload["truncated"] is True
    assert len(payload["excerpt"]) == PAYLOAD_MAX_CHARS


def test_a_batch_that_fails_half_way_stores_and_queues_none_of_it(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    from django.db import OperationalError

    from mailings.feedback import intake

    deliveries = [DeliveryFactory(esp_message_id="") for _ in range(3)]
    events = [
        json.loads(
            ESPS["mailjet"](
                "delivered",
                Message(
                    email=delivery.supporter.email,
                    message_id=message_id_for("mailjet", n),
                    metadata=metadata_for(delivery),
                    serial=n,
                ),
            ).body
        )[0]
        for n, delivery in enumerate(deliveries)
    ]
    real_insert = intake.insert_many_unless_exist

    def insert_then_lose_the_database(*args, **kwargs):
        real_insert(*args, **kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(intake, "insert_many_unless_exist", insert_then_lose_the_database)
    client.raise_request_exception = False

    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            "/anymail/mailjet/tracking/",
            json.dumps(events),
            content_type="application/json",
            **basic_auth(),
        )

    # A server error: the ESP retries the whole post later.
    assert response.status_code == 500
    assert not TrackingEvent.objects.exists()
    assert queued == []


def _mounted_webhook_paths() -> list[str]:
    """Every ESP webhook URL Rally mounts (mailings/feedback/urls.py), by reversing its names."""
    paths = {reverse(f"anymail:{pattern.name}") for pattern in feedback_urls.urlpatterns}
    # anymail's Mailgun inbound pattern also takes "inbound_mime/"; reverse() gives one form.
    return sorted(paths | {"/anymail/mailgun/inbound_mime/"})


WEBHOOK_REQUESTS = [
    pytest.param("GET", b"", "", id="get"),
    pytest.param("HEAD", b"", "", id="head"),
    pytest.param("POST", b"not json at all", "application/json", id="not-json"),
    pytest.param("POST", b"{}", "application/json", id="empty-object"),
    pytest.param("POST", b"[]", "application/json", id="empty-list"),
    pytest.param("POST", b"event=x", "application/x-www-form-urlencoded", id="form"),
    pytest.param("POST", b"\xff\xfe\x00", "application/octet-stream", id="binary"),
]


# anymail's SendinBlue URLs, still mounted, warn that they are deprecated on every request.
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailDeprecationWarning")
@pytest.mark.parametrize(("method", "body", "content_type"), WEBHOOK_REQUESTS)
def test_every_esp_webhook_url_answers_below_500_configured_or_not(
    client, settings, method, body, content_type
):
    # Only the shared secret: every ESP that needs a key of its own is not configured.
    settings.ANYMAIL = {"WEBHOOK_SECRET": settings.ANYMAIL_WEBHOOK_SECRET}
    client.raise_request_exception = False
    answers = {}
    for path in _mounted_webhook_paths():
        response = client.generic(method, path, body, content_type=content_type, **basic_auth())
        answers[path] = response.status_code
        if response.status_code == 404 and method != "HEAD":  # a HEAD answer has no body
            assert response.content == NOT_ENABLED.encode(), path
    assert {path: code for path, code in answers.items() if code >= 500} == {}
    assert answers["/anymail/mailgun/tracking/"] == 404  # needs its signing key
    if body in (b"not json at all", b"\xff\xfe\x00"):
        assert all(400 <= code < 500 for code in answers.values())
        assert not TrackingEvent.objects.exists()


def test_an_esp_whose_webhooks_are_not_configured_answers_404_and_stores_nothing(
    post_webhook, settings
):
    delivery = DeliveryFactory(esp_message_id="")
    settings.ANYMAIL = {"WEBHOOK_SECRET": settings.ANYMAIL_WEBHOOK_SECRET}

    response = post_webhook(complaint_for(delivery, "mailgun"))

    assert (response.status_code, response.content.decode()) == (404, NOT_ENABLED)
    assert not TrackingEvent.objects.exists()
