"""Subscribing: the `webhook_subscribe` command's contract, and the URLs a webhook may use."""

import io
import socket

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.security.test_headers_and_deploy import (
    PRODUCTION_ENVIRONMENT,
    run_with_production_settings,
)
from webhooks.destinations import address_is_public, validate_webhook_url
from webhooks.models import WebhookSubscription

from .conftest import SECRET

pytestmark = pytest.mark.django_db


def subscribe(*args: str) -> str:
    out = io.StringIO()
    call_command("webhook_subscribe", *args, stdout=out)
    return out.getvalue()


def test_the_command_subscribes_and_prints_the_id_on_its_last_line():
    output = subscribe(
        "https://crm.example.org/hooks/rally",
        "--events",
        "signature.created, supporter.unsubscribed",
        "--secret",
        SECRET,
    )
    subscription = WebhookSubscription.objects.get()
    assert output.strip().splitlines()[-1] == str(subscription.pk)
    assert subscription.url == "https://crm.example.org/hooks/rally"
    assert subscription.events == ["signature.created", "supporter.unsubscribed"]
    assert subscription.secret == SECRET and subscription.active


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [
        ("ftp://crm.example.org/in", "signature.created", "must start with http:// or https://"),
        ("javascript:alert(1)", "signature.created", "must start with http:// or https://"),
        ("not a url", "signature.created", "must start with http:// or https://"),
        ("https://exa mple.org/", "signature.created", "is not a valid URL"),
        ("https://user:pw@crm.example.org/", "signature.created", "user name or password"),
        ("https://crm.example.org/", "signature.signed", "Unknown event 'signature.signed'"),
        ("https://crm.example.org/", "", "Choose at least one event"),
        ("https://crm.example.org/", "mailing.sent,mailing.sent", "named twice"),
    ],
)
def test_a_bad_url_or_event_is_a_clear_error_and_subscribes_nothing(url, events, message):
    with pytest.raises(CommandError, match=message):
        subscribe(url, "--events", events, "--secret", SECRET)
    assert not WebhookSubscription.objects.exists()


def test_a_blank_secret_is_refused():
    with pytest.raises(CommandError, match="secret"):
        subscribe("https://crm.example.org/", "--events", "mailing.sent", "--secret", "")
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://100.64.0.1/hook",  # carrier-grade NAT, shared
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://2130706433/hook",  # 127.0.0.1 written as one number
        "http://0x7f000001/hook",
        "http://240.0.0.1/hook",  # reserved
    ],
)
def test_production_refuses_loopback_private_and_reserved_destinations(settings, url):
    settings.RALLY_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(CommandError):
        subscribe(url, "--events", "signature.created", "--secret", SECRET)
    assert not WebhookSubscription.objects.exists()


def test_the_production_settings_themselves_refuse_a_loopback_webhook():
    result = run_with_production_settings(
        ["-c", "import django; django.setup();"
         "from webhooks.destinations import validate_webhook_url;"
         "validate_webhook_url('http://127.0.0.1:8000/hook')"],
        **PRODUCTION_ENVIRONMENT,
    )  # fmt: skip
    assert result.returncode != 0
    assert "webhooks may not point inside the server's network" in result.stderr


def test_a_public_address_is_allowed_in_production(settings):
    settings.RALLY_WEBHOOK_ALLOW_PRIVATE = False
    # A literal address: resolving it needs no DNS, so the test touches no network.
    validate_webhook_url("https://93.184.216.34/hooks")
    assert address_is_public("2606:2800:220:1:248:1893:25c8:1946")


def test_a_name_that_does_not_resolve_is_refused_in_production(settings):
    settings.RALLY_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError, match="does not resolve"):
        validate_webhook_url("https://no-such-host.invalid/hooks")


def test_a_name_resolving_to_both_public_and_private_addresses_is_refused(settings, monkeypatch):
    settings.RALLY_WEBHOOK_ALLOW_PRIVATE = False
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
    with pytest.raises(ValidationError, match="10.0.0.7"):
        validate_webhook_url("https://mixed.example.org/hooks")


def test_a_laptop_may_point_a_webhook_at_itself(settings):
    settings.RALLY_WEBHOOK_ALLOW_PRIVATE = True
    subscribe("http://127.0.0.1:9000/hook", "--events", "mailing.sent", "--secret", SECRET)
    assert WebhookSubscription.objects.count() == 1
