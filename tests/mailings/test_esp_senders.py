"""The fast paths to the ESP produce what the standard paths would."""

import email
import email.policy

import pytest

from mailings.esp.smtp import mime_bytes
from mailings.rendering import CompiledMailing, build_message, merge_fields
from tests.factories import MailingFactory

pytestmark = pytest.mark.django_db


def appeal(**supporter):
    compiled = CompiledMailing(MailingFactory(subject="Привет, {{ first_name }}: sign now"))
    fields = merge_fields(
        compiled=compiled,
        supporter_id=7,
        email=supporter.get("email", "ann@example.org"),
        first_name=supporter.get("first_name", "Анна"),
        last_name="Lee",
        country="GB",
    )
    return build_message(compiled=compiled, fields=fields, delivery_id=1)


def test_lean_mime_parses_to_the_same_message_django_would_send():
    message = appeal()
    raw = mime_bytes(message, "<id@example.org>")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    ours = email.message_from_bytes(raw, policy=email.policy.default)
    django = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    for header in ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert str(ours[header]).strip() == str(django[header]).strip(), header
    assert str(ours["Subject"]) == "Привет, Анна: sign now"
    assert ours["Message-ID"] == "<id@example.org>"
    for kind in ("plain", "html"):
        # MIME's canonical line end is CRLF; Django's bytes use LF until smtplib sends them.
        our_text = ours.get_body((kind,)).get_content().replace("\r\n", "\n")
        assert our_text == django.get_body((kind,)).get_content(), kind


def test_no_header_can_be_split_by_a_merge_value():
    message = appeal(first_name="Ann\r\nBcc: victim@example.org")
    parsed = email.message_from_bytes(mime_bytes(message, "<id@example.org>"))
    assert parsed["Bcc"] is None
