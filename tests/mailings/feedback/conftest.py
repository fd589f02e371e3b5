import pytest

from mailings.feedback.processing import tracking_event_process
from mailings.models import TrackingEvent

from .payloads import MAILGUN_SIGNING_KEY, WebhookPost, basic_auth


@pytest.fixture(autouse=True)
def esp_webhook_settings(settings):
    """Configure what anymail needs beyond the shared secret: Mailgun signs its posts.

    SNS subscriptions are never confirmed by calling AWS in a test.
    """
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False,
    }


@pytest.fixture
def post_webhook(client):
    """Post as the ESP would: with the webhook secret, unless told otherwise."""

    def post(webhook: WebhookPost, *, auth: dict | None = None):
        return client.generic(
            "POST",
            webhook.path,
            webhook.body.encode(),
            content_type=webhook.content_type,
            **(basic_auth() if auth is None else auth),
            **webhook.headers,
        )

    return post


def process_stored_events() -> list[str]:
    """Process every stored, unprocessed event in-process, as the tracking worker would."""
    pending = TrackingEvent.objects.filter(processed_at__isnull=True).order_by("pk")
    return [tracking_event_process(event_pk=pk) for pk in pending.values_list("pk", flat=True)]
