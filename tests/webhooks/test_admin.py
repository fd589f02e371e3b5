"""Webhooks in the admin: subscriptions for administrators only, with a secret that is never
shown again; deliveries read-only with the receiver's answers; a retry needs its permission."""

import pytest

from tests.admin_users import staff_user
from tests.security.conftest import role_user
from webhooks.models import WebhookDelivery, WebhookSubscription
from webhooks.services import EventSubject, webhook_events_record, webhook_subscription_create

from .conftest import SECRET

pytestmark = pytest.mark.django_db

ADD = "/admin/webhooks/webhooksubscription/add/"


def add_form(**changes) -> dict:
    return {
        "url": "https://crm.example.org/hooks/rally",
        "events": ["signature.created", "supporter.erased"],
        "new_secret": SECRET,
        "active": "on",
        **changes,
    }


def test_an_administrator_subscribes_and_the_secret_is_never_shown_again(client):
    admin = role_user("superuser")
    client.force_login(admin)
    assert client.get(ADD).status_code == 200
    response = client.post(ADD, add_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription = WebhookSubscription.objects.get()
    assert subscription.secret == SECRET and subscription.created_by == admin
    assert subscription.events == ["signature.created", "supporter.erased"]

    change = f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/"
    page = client.get(change).content.decode()
    assert SECRET not in page
    assert SECRET not in client.get("/admin/webhooks/webhooksubscription/").content.decode()

    # Saved without a new secret, the old one stays; given one, it replaces it.
    assert client.post(change, add_form(new_secret="", active="")).status_code == 302
    subscription.refresh_from_db()
    assert subscription.secret == SECRET and not subscription.active
    assert client.post(change, add_form(new_secret="another-long-secret")).status_code == 302
    subscription.refresh_from_db()
    assert subscription.secret == "another-long-secret"  # noqa: S105


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "ftp://crm.example.org/"}, "must start with http:// or https://"),
        ({"events": ["signature.signed"]}, "Select a valid choice"),
        ({"events": []}, "This field is required"),
        ({"new_secret": ""}, "This field is required"),
    ],
)
def test_a_bad_subscription_is_refused_with_a_message_and_nothing_saved(client, changes, message):
    client.force_login(role_user("superuser"))
    response = client.post(ADD, add_form(**changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_a_private_destination_is_refused_in_production(client, settings):
    settings.RALLY_WEBHOOK_ALLOW_PRIVATE = False
    client.force_login(role_user("superuser"))
    response = client.post(ADD, add_form(url="http://169.254.169.254/latest/"))
    assert response.status_code == 200
    assert "webhooks may not point inside the server" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_only_administrators_reach_subscriptions(client):
    subscription = webhook_subscription_create(
        url="https://crm.example.org/hook", events=["mailing.sent"], secret=SECRET
    )
    client.force_login(role_user("campaigner"))
    for page in (
        "/admin/webhooks/webhooksubscription/",
        ADD,
        f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/",
    ):
        assert client.get(page).status_code == 403, page
    assert client.post(ADD, add_form()).status_code == 403
    assert WebhookSubscription.objects.count() == 1


@pytest.fixture
def failed_delivery():
    webhook_subscription_create(
        url="https://crm.example.org/hook", events=["mailing.sent"], secret=SECRET
    )
    [delivery_id] = webhook_events_record(
        event_type="mailing.sent", subjects=[EventSubject({"identifiers": ["rally:7"]})]
    )
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status="failed", attempts=1, response_status=410,
        response_body='{"error": "gone away"}', next_attempt_at=None,
    )  # fmt: skip
    return WebhookDelivery.objects.get(pk=delivery_id)


def test_deliveries_are_listed_with_their_answers_read_only(client, failed_delivery):
    client.force_login(staff_user("webhooks.view_webhookdelivery"))
    listing = client.get("/admin/webhooks/webhookdelivery/?status=failed").content.decode()
    assert "410" in listing and "mailing.sent" in listing
    page = client.get(f"/admin/webhooks/webhookdelivery/{failed_delivery.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "gone away" in text and "rally:7" in text
    assert 'name="_save"' not in text
    assert client.get("/admin/webhooks/webhookdelivery/add/").status_code == 403
    # The retry action is not offered, and posting it changes nothing.
    assert 'value="retry"' not in client.get("/admin/webhooks/webhookdelivery/").content.decode()
    client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "retry", "_selected_action": [failed_delivery.pk]},
    )
    assert WebhookDelivery.objects.get(pk=failed_delivery.pk).status == "failed"


def test_a_retry_needs_its_permission_and_makes_the_delivery_due_again(
    client, failed_delivery, django_capture_on_commit_callbacks
):
    client.force_login(
        staff_user("webhooks.view_webhookdelivery", "webhooks.retry_webhookdelivery")
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            "/admin/webhooks/webhookdelivery/",
            {"action": "retry", "_selected_action": [failed_delivery.pk]},
        )
    assert response.status_code == 302
    delivery = WebhookDelivery.objects.get(pk=failed_delivery.pk)
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    assert len(queued) == 1  # its task, queued when the retry commits
