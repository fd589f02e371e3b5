from urllib.parse import urlencode

import pytest

from campaigns.models import Signature
from supporters.models import ConsentRecord, Supporter
from tests.factories import PetitionFactory, SupporterFactory

pytestmark = pytest.mark.django_db

VALID = {
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "Ann.Lee@Example.org",
    "country": "GB",
    "postcode": "N1 9GU",
    "consent": "on",
}


def sign(client, petition, **changes):
    data = {**VALID, **changes}
    return client.post(
        f"/petitions/{petition.slug}/", {k: v for k, v in data.items() if v is not None}
    )


def test_petition_list_links_to_open_petitions_only(client):
    open_petition = PetitionFactory(title="Free them")
    closed = PetitionFactory(title="Old one", is_open=False)
    page = client.get("/petitions/").content.decode()
    assert f'href="/petitions/{open_petition.slug}/"' in page
    assert closed.title not in page


def test_signing_records_supporter_signature_and_consent_then_thanks(client):
    petition = PetitionFactory()
    response = sign(client, petition)
    assert response.status_code == 302
    assert response["Location"] == f"/petitions/{petition.slug}/thanks/"
    supporter = Supporter.objects.get()
    assert supporter.email == "ann.lee@example.org"
    assert supporter.status == Supporter.Status.SUBSCRIBED
    signature = Signature.objects.get()
    assert signature.petition == petition and signature.is_confirmed
    consent = ConsentRecord.objects.get()
    assert consent.wording == petition.consent_wording
    assert consent.ip_truncated == "127.0.0.0"
    assert client.get(response["Location"]).status_code == 200


def test_signing_without_consent_counts_but_does_not_subscribe(client):
    petition = PetitionFactory()
    assert sign(client, petition, consent=None).status_code == 302
    assert Signature.objects.count() == 1
    assert Supporter.objects.get().status == Supporter.Status.UNSUBSCRIBED
    assert not ConsentRecord.objects.exists()


def test_second_signature_is_a_harmless_no_op_with_the_same_response(client):
    petition = PetitionFactory()
    first = sign(client, petition)
    second = sign(client, petition, email="ANN.LEE@example.org")
    assert (first.status_code, first["Location"]) == (second.status_code, second["Location"])
    assert Signature.objects.count() == 1
    assert Supporter.objects.count() == 1


def test_known_and_unknown_emails_get_identical_responses(client):
    petition = PetitionFactory()
    SupporterFactory(email="known@example.org")
    known = sign(client, petition, email="known@example.org")
    unknown = sign(client, petition, email="stranger@example.org")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]


BAD_INPUT = [
    ("email", "", "This field is required"),
    ("email", "not-an-email", "Please check your email address"),
    ("email", "ann@", "Please check your email address"),
    ("email", "ann lee@example.org", "Please check your email address"),
    ("email", "a" * 10_000 + "@example.org", "at most 254 characters"),
    ("email", "ann@example.org\r\nBcc: x@example.org", "line breaks"),
    ("first_name", "", "This field is required"),
    ("first_name", "x" * 10_240, "at most 100 characters"),
    ("first_name", "Ann\r\nBcc: victim@example.org", "line breaks"),
    ("first_name", "Ann\x07", "line breaks"),
    ("first_name", "Ann\x00", "Null characters are not allowed"),
    ("last_name", "<script>alert(1)</script>", "not allowed"),
    ("last_name", "Lee\ufffd", "line breaks"),
    ("postcode", "N1\n9GU", "line breaks"),
    ("country", "XX", "Please choose your country from the list"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUT)
def test_bad_input_gets_a_clear_message_beside_the_field_and_stores_nothing(
    client, field, value, message
):
    petition = PetitionFactory()
    response = sign(client, petition, **{field: value})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    # What was typed is kept (other fields), so nobody has to type it again.
    if field != "first_name":
        assert 'value="Ann"' in body
    assert not Supporter.objects.exists()
    assert not Signature.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_invalid_utf8_in_the_body_is_rejected_without_a_500(client):
    petition = PetitionFactory()
    body = b"first_name=%FF%FE&last_name=Lee&email=ann%40example.org"
    response = client.post(
        f"/petitions/{petition.slug}/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert not Signature.objects.exists()


def _cp1251_form(*, percent_encoded: bool) -> bytes:
    """A sign form as a page in windows-1251 would post it: Cyrillic not in UTF-8."""
    fields = {**VALID, "first_name": "Пётр", "last_name": "Иванов", "email": "petr@example.org"}
    if percent_encoded:
        return urlencode(fields, encoding="cp1251").encode("ascii")
    return b"&".join(f"{key}=".encode() + value.encode("cp1251") for key, value in fields.items())


@pytest.mark.parametrize("page", ["", "embed/"])
@pytest.mark.parametrize(
    ("percent_encoded", "content_type"),
    [
        (False, "application/x-www-form-urlencoded"),
        (True, "application/x-www-form-urlencoded"),
        (False, "application/x-www-form-urlencoded; charset=windows-1251"),
    ],
    ids=["raw", "percent-encoded", "declared"],
)
def test_a_form_body_that_is_not_utf8_is_refused_with_a_clear_400_and_nothing_stored(
    client, page, percent_encoded, content_type
):
    petition = PetitionFactory()
    response = client.generic(
        "POST",
        f"/petitions/{petition.slug}/{page}",
        _cp1251_form(percent_encoded=percent_encoded),
        content_type=content_type,
    )
    assert response.status_code == 400
    assert "not in UTF-8" in response.content.decode()
    assert not Supporter.objects.exists()
    assert not Signature.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_honeypot_gets_the_thank_you_page_and_stores_nothing(client):
    petition = PetitionFactory()
    response = sign(client, petition, website="http://spam.example")
    assert response.status_code == 302
    assert response["Location"] == f"/petitions/{petition.slug}/thanks/"
    assert not Supporter.objects.exists()


def test_closed_petition_says_so_and_takes_no_signature(client):
    petition = PetitionFactory(is_open=False)
    page = client.get(f"/petitions/{petition.slug}/")
    assert b"closed" in page.content
    assert b"<form" not in page.content
    response = sign(client, petition)
    assert response.status_code == 409
    assert not Signature.objects.exists()


def test_unknown_petition_is_a_404_not_a_500(client):
    assert client.get("/petitions/no-such-thing/").status_code == 404
