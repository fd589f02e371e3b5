"""The mailto: unsubscribe address: a signed token in the address, heard through anymail.

Payloads follow each ESP's documented inbound format, as anymail's own inbound tests for
Postmark, Mailgun and SendGrid write them (in the django-anymail repository, not here), and go
to anymail's real inbound views under /anymail/, behind the webhook secret.
"""

import hashlib
import hmac
import json
import logging
import re
from base64 import b64encode
from urllib.parse import unquote

import pytest

from mailings.content.rendering import CompiledMailing, build_message, merge_fields
from supporters.models import Supporter
from supporters.tokens import (
    find_unsubscribe_mailto_tokens,
    make_unsubscribe_mailto_token,
    make_unsubscribe_token,
    read_unsubscribe_mailto_token,
    unsubscribe_mailto_address,
)
from tests.factories import MailingFactory, SupporterFactory

pytestmark = pytest.mark.django_db

MAILGUN_SIGNING_KEY = "rally-test-mailgun-signing-key"  # noqa: S105 -- a test key


def basic_auth(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + b64encode(secret.encode()).decode()}


@pytest.fixture
def webhook_auth(settings):
    return basic_auth(settings.ANYMAIL_WEBHOOK_SECRET)


def postmark_inbound(to: str, *, subject: str = "unsubscribe", cc: str = "") -> dict:
    """Postmark's inbound JSON, without RawEmail, as its documentation gives it."""
    return {
        "FromName": "Ann Lee",
        "From": "ann@example.org",
        "FromFull": {"Email": "ann@example.org", "Name": "Ann Lee", "MailboxHash": ""},
        "To": to,
        "ToFull": [{"Email": to, "Name": "", "MailboxHash": to.partition("+")[2].split("@")[0]}],
        "Cc": cc,
        "CcFull": [{"Email": cc, "Name": "", "MailboxHash": ""}] if cc else [],
        "OriginalRecipient": to,
        "Subject": subject,
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "",
        "MailboxHash": to.partition("+")[2].split("@")[0],
        "Date": "Wed, 2 Dec 2026 09:00:00 +0000",
        "TextBody": "",
        "HtmlBody": "",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": "<ann@example.org>"},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "X-Spam-Score", "Value": "-0.1"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<CAEPk3R+4Zr@mail.example.org>"},
        ],
        "Attachments": [],
    }


def post_postmark(client, payload: dict, auth: dict):
    return client.post(
        "/anymail/postmark/inbound/",
        data=json.dumps(payload),
        content_type="application/json",
        **auth,
    )


def mailgun_inbound(to: str) -> dict:
    """Mailgun's (legacy, parsed) inbound form post, signed with the webhook signing key."""
    data = {
        "token": "06c96bafc3f42a66b9edd546347a2fe18dc23461fe80dc52f0",
        "timestamp": "1764666000",
        "recipient": to,
        "sender": "ann@example.org",
        "subject": "unsubscribe",
        "from": "Ann Lee <ann@example.org>",
        "message-headers": json.dumps(
            [
                ["X-Mailgun-Sflag", "No"],
                ["X-Mailgun-Sscore", "0.1"],
                ["Received", f"by mail.example.org for <{to}> ..."],
                ["From", "Ann Lee <ann@example.org>"],
                ["Date", "Wed, 2 Dec 2026 09:00:00 +0000"],
                ["Message-Id", "<CAEPk3R+4Zr@mail.example.org>"],
                ["Subject", "unsubscribe"],
                ["To", to],
                ["Mime-Version", "1.0"],
            ]
        ),
        "body-plain": "",
    }
    data["signature"] = hmac.new(
        MAILGUN_SIGNING_KEY.encode(),
        (data["timestamp"] + data["token"]).encode(),
        hashlib.sha256,
    ).hexdigest()
    return data


def sendgrid_inbound(to: str) -> dict:
    """SendGrid's Inbound Parse form post (parsed, not raw)."""
    return {
        "headers": (
            "MIME-Version: 1.0\n"
            "From: Ann Lee <ann@example.org>\n"
            "Date: Wed, 2 Dec 2026 09:00:00 +0000\n"
            "Message-ID: <CAEPk3R+4Zr@mail.example.org>\n"
            "Subject: unsubscribe\n"
            f"To: {to}\n"
            "Content-Type: text/plain; charset=UTF-8\n"
        ),
        "from": "Ann Lee <ann@example.org>",
        "to": to,
        "subject": "unsubscribe",
        "text": "",
        "charsets": '{"to":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}',
        "envelope": json.dumps({"to": [to], "from": "ann@example.org"}),
        "SPF": "pass",
        "spam_score": "0.1",
    }


def mailto_address_in_message(supporter) -> str:
    """Return the mailto: address a real bulk message to this supporter carries."""
    compiled = CompiledMailing(MailingFactory())
    fields = merge_fields(
        compiled=compiled,
        supporter_id=supporter.pk,
        email=supporter.email,
        first_name="",
        last_name="",
        country="",
    )
    header = build_message(compiled=compiled, fields=fields, delivery_id=1).extra_headers[
        "List-Unsubscribe"
    ]
    return unquote(re.search(r"<mailto:([^?>]+)", header).group(1))


def status_of(supporter) -> str:
    supporter.refresh_from_db()
    return supporter.status


def test_the_mailto_token_survives_mail_systems_and_rejects_forgery(settings):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@lists.rally.example"
    token = make_unsubscribe_mailto_token(1234567890)
    assert re.fullmatch(r"[a-z0-9-]+", token)
    address = unsubscribe_mailto_address(1234567890)
    assert address == f"unsubscribe+{token}@lists.rally.example"
    assert len(address.partition("@")[0]) <= 64
    # Case changed on the way: still theirs.
    assert read_unsubscribe_mailto_token(token.upper()) == 1234567890
    assert find_unsubscribe_mailto_tokens(f'"Rally" <{address.upper()}>') == {1234567890}
    # Another id with this digest, a changed digit, a cut token: nobody.
    digest = token.partition("-")[2]
    assert read_unsubscribe_mailto_token(f"1234567891-{digest}") is None
    assert read_unsubscribe_mailto_token(token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert read_unsubscribe_mailto_token(token[:-1]) is None
    assert read_unsubscribe_mailto_token("") is None
    assert find_unsubscribe_mailto_tokens(f"unsubscribe-{token}@lists.rally.example") == set()


def test_a_rotated_secret_key_still_reads_mailto_tokens_already_sent(settings):
    token = make_unsubscribe_mailto_token(42)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    assert make_unsubscribe_mailto_token(42) != token
    assert read_unsubscribe_mailto_token(token) == 42


def test_every_bulk_message_names_an_address_with_the_token(settings):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@lists.rally.example"
    supporter = SupporterFactory()
    address = mailto_address_in_message(supporter)
    assert address == unsubscribe_mailto_address(supporter.pk)
    assert address.startswith("unsubscribe+") and address.endswith("@lists.rally.example")


def test_mail_to_the_address_of_a_real_message_unsubscribes_through_postmark(client, webhook_auth):
    supporter = SupporterFactory()
    bystander = SupporterFactory()
    address = mailto_address_in_message(supporter)
    response = post_postmark(client, postmark_inbound(address), webhook_auth)
    assert response.status_code == 200
    assert status_of(supporter) == Supporter.Status.UNSUBSCRIBED
    assert status_of(bystander) == Supporter.Status.SUBSCRIBED
    # The ESP retries or a second mail comes: harmless.
    assert post_postmark(client, postmark_inbound(address), webhook_auth).status_code == 200
    assert status_of(supporter) == Supporter.Status.UNSUBSCRIBED


def test_an_address_lower_cased_on_the_way_still_unsubscribes(client, webhook_auth):
    supporter = SupporterFactory()
    address = unsubscribe_mailto_address(supporter.pk).upper()
    assert post_postmark(client, postmark_inbound(address.lower()), webhook_auth).status_code == 200
    assert status_of(supporter) == Supporter.Status.UNSUBSCRIBED


def test_the_token_counts_in_cc_and_delivered_to_too(client, webhook_auth):
    in_cc, delivered_to = SupporterFactory(), SupporterFactory()
    payload = postmark_inbound("someone@example.org", cc=unsubscribe_mailto_address(in_cc.pk))
    payload["Headers"].append(
        {"Name": "Delivered-To", "Value": unsubscribe_mailto_address(delivered_to.pk)}
    )
    assert post_postmark(client, payload, webhook_auth).status_code == 200
    assert status_of(in_cc) == Supporter.Status.UNSUBSCRIBED
    assert status_of(delivered_to) == Supporter.Status.UNSUBSCRIBED


def test_the_subject_token_unsubscribes_when_the_address_lost_its_token(client, webhook_auth):
    supporter = SupporterFactory()
    subject = f"unsubscribe {make_unsubscribe_token(supporter.pk)}"
    payload = postmark_inbound("unsubscribe@localhost", subject=subject)
    assert post_postmark(client, payload, webhook_auth).status_code == 200
    assert status_of(supporter) == Supporter.Status.UNSUBSCRIBED


def test_mailgun_inbound_unsubscribes(client, webhook_auth, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    supporter = SupporterFactory()
    payload = mailgun_inbound(unsubscribe_mailto_address(supporter.pk))
    response = client.post("/anymail/mailgun/inbound/", data=payload, **webhook_auth)
    assert response.status_code == 200
    assert status_of(supporter) == Supporter.Status.UNSUBSCRIBED


# anymail warns that it no longer supports SendGrid officially; its inbound view still works.
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_inbound_unsubscribes(client, webhook_auth):
    supporter = SupporterFactory()
    payload = sendgrid_inbound(unsubscribe_mailto_address(supporter.pk))
    response = client.post("/anymail/sendgrid/inbound/", data=payload, **webhook_auth)
    assert response.status_code == 200
    assert status_of(supporter) == Supporter.Status.UNSUBSCRIBED


def test_a_forged_token_a_bare_address_or_a_reply_changes_nothing(client, webhook_auth, caplog):
    supporter = SupporterFactory()
    real = make_unsubscribe_mailto_token(supporter.pk)
    forged = f"{supporter.pk}-{'0' * 20}"
    other_id = f"{supporter.pk + 1}-{real.partition('-')[2]}"
    payloads = [
        postmark_inbound(f"unsubscribe+{forged}@localhost"),
        postmark_inbound(f"unsubscribe+{other_id}@localhost"),
        postmark_inbound("unsubscribe@localhost"),
        postmark_inbound("unsubscribe@localhost", subject=f"unsubscribe {supporter.pk}:forged"),
        postmark_inbound("campaigns@rally.example", subject="Re: Ann, sign now"),
    ]
    with caplog.at_level(logging.INFO, logger="supporters.inbound"):
        for payload in payloads:
            assert post_postmark(client, payload, webhook_auth).status_code == 200
    assert status_of(supporter) == Supporter.Status.SUBSCRIBED
    assert caplog.text.count("carries no valid unsubscribe token; ignored") == len(payloads)


@pytest.mark.parametrize("auth", [{}, basic_auth("rally-webhooks:wrong")])
def test_bad_webhook_credentials_are_refused_and_change_nothing(client, auth):
    supporter = SupporterFactory()
    payload = postmark_inbound(unsubscribe_mailto_address(supporter.pk))
    response = post_postmark(client, payload, auth)
    assert 400 <= response.status_code < 500
    assert status_of(supporter) == Supporter.Status.SUBSCRIBED


def test_a_malformed_inbound_body_is_a_4xx_and_changes_nothing(client, webhook_auth):
    supporter = SupporterFactory()
    address = unsubscribe_mailto_address(supporter.pk)
    response = client.post(
        "/anymail/postmark/inbound/",
        data='{"OriginalRecipient": "' + address + '", ',
        content_type="application/json",
        **webhook_auth,
    )
    assert 400 <= response.status_code < 500
    assert status_of(supporter) == Supporter.Status.SUBSCRIBED
