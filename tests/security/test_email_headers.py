"""Email header injection: a line break in any text that reaches a header adds no header.

Through the sign form (names and address are refused with a message), and through everything
a message's headers are made of (a mailing's subject, a variant's sender name, a supporter's
name merged into the subject, a petition's title in the confirmation subject), each checked in
the MIME message as it would go out.
"""

from email import message_from_bytes, policy

import pytest
from django.core import mail

from campaigns.confirmation import signature_confirmation_email_send
from mailings.content.rendering import CompiledMailing, build_message, merge_fields
from mailings.forms import MailingVariantForm
from mailings.models import MailingVariant
from supporters.models import Supporter
from tests.factories import MailingFactory, PetitionFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db

BREAKS = ["\r\n", "\n", "\r", "\u2028", "\x85"]
INJECTED = "X-Injected: yes"


def headers_of(message) -> dict[str, list[str]]:
    """Return the headers of the message as an ESP would receive its bytes."""
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    headers: dict[str, list[str]] = {}
    for name, value in parsed.items():
        headers.setdefault(name.lower(), []).append(str(value))
    return headers


@pytest.mark.parametrize("line_break", BREAKS)
@pytest.mark.parametrize("field", ["first_name", "last_name", "email"])
def test_the_sign_form_refuses_a_line_break_in_a_name_or_address(client, field, line_break):
    petition = PetitionFactory()
    data = {"email": "ann@example.org", "first_name": "Ann", "last_name": "Lee",
            "country": "GB", "postcode": "", "consent": "on"}  # fmt: skip
    data[field] = f"{data[field]}{line_break}Bcc: everyone@example.org"
    response = client.post(f"/petitions/{petition.slug}/", data)
    assert response.status_code == 400
    assert not Supporter.objects.exists()
    assert not mail.outbox


@pytest.mark.parametrize("line_break", BREAKS)
def test_no_header_is_added_to_a_mailing_by_its_subject_names_or_sender(line_break):
    mailing = MailingFactory(
        subject=f"Hello{line_break}{INJECTED} {{{{ first_name }}}}",
        ab_test_share=20,
    )
    MailingVariant.objects.create(
        mailing=mailing, label="B", subject=f"Hi{line_break}{INJECTED}",
        from_name=f"Rally{line_break}{INJECTED}",
    )  # fmt: skip
    compiled = CompiledMailing(mailing)
    fields = merge_fields(
        compiled=compiled, supporter_id=1, email="ann@example.org",
        first_name=f"Ann{line_break}{INJECTED}", last_name=f"Lee{line_break}Bcc: x@example.org",
        country="GB",
    )  # fmt: skip
    for variant in ("", "B"):
        message = build_message(compiled=compiled, fields=fields, delivery_id=1, variant=variant)
        headers = headers_of(message)
        assert "x-injected" not in headers and "bcc" not in headers, (variant, headers)
        assert len(headers["subject"]) == len(headers["from"]) == len(headers["to"]) == 1
        assert headers["to"] == ["ann@example.org"]


@pytest.mark.parametrize("line_break", BREAKS)
def test_the_admin_refuses_a_line_break_in_a_variants_sender_name(line_break):
    form = MailingVariantForm(
        {"label": "B", "language": "", "subject": "", "preheader": "",
         "from_name": f"Rally{line_break}{INJECTED}"}
    )  # fmt: skip
    assert not form.is_valid()
    assert form.errors["from_name"] == ["Please remove line breaks and special characters."]


@pytest.mark.parametrize("line_break", BREAKS)
def test_no_header_is_added_to_the_confirmation_email_by_a_title_or_a_name(line_break):
    petition = PetitionFactory(requires_confirmation=True, title=f"Free them{line_break}{INJECTED}")
    supporter = SupporterFactory(first_name=f"Ann{line_break}{INJECTED}")
    signature = SignatureFactory(petition=petition, supporter=supporter, confirmed_at=None)
    assert signature_confirmation_email_send(signature_id=signature.pk)
    [message] = mail.outbox
    headers = headers_of(message)
    assert "x-injected" not in headers
    assert len(headers["subject"]) == 1
