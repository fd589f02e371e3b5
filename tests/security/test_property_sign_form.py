"""The sign form, on any input: a clear error or a correct record, never an exception.

The same inputs through the form and service (what the view calls), and through HTTP.
"""

from urllib.parse import quote_from_bytes, unquote_to_bytes

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from campaigns.forms import SignatureForm
from campaigns.models import Petition, Signature
from campaigns.signing import signature_create
from campaigns.views import signature_input_from_form
from supporters.models import Supporter
from tests.factories import PetitionFactory

pytestmark = pytest.mark.django_db

CONSENT = "Email me about this campaign."
texts = st.one_of(
    st.text(max_size=40),
    st.text(max_size=300),
    st.sampled_from(
        [
            "",
            " ",
            "Zoë",
            "Анна",
            "O'Brien",
            "=1+1",
            "<b>",
            "a\r\nBcc: x@y.org",
            "\x00",
            "\ufeff",
            "\u202e",
            "🙂",
            "a" * 101,
        ]
    ),  # fmt: skip
)
emails = st.one_of(
    st.emails().map(str),
    st.text(max_size=60),
    st.builds(lambda local, domain: f"{local}@{domain}", st.text(max_size=20),
              st.sampled_from(["example.org", "EXAMPLE.ORG", "пример.рф", "localhost", ""])),
    st.sampled_from(["Ann@Example.org", " ann@example.org ", "ann@@example.org", "a" * 300]),
)  # fmt: skip
sign_data = st.fixed_dictionaries(
    {
        "email": emails,
        "first_name": texts,
        "last_name": texts,
        "country": st.one_of(st.sampled_from(["GB", "RU", "gb", "", "XX", "ZZZ"]), texts),
        "postcode": texts,
    },
    optional={"consent": st.sampled_from(["on", "", "yes", "0"]), "source": texts},
)


def the_petition() -> Petition:
    return Petition.objects.first() or PetitionFactory(consent_wording=CONSENT)


@given(data=sign_data)
def test_the_sign_service_takes_any_form_input_to_a_clear_error_or_a_correct_record(data):
    petition = the_petition()
    form = SignatureForm(data, consent_wording=CONSENT)
    if not form.is_valid():
        assert all(
            all(str(message).strip() for message in errors) for errors in form.errors.values()
        )
        return
    signature_create(
        petition=petition, signer=signature_input_from_form(form, CONSENT),
        source_url="https://rally.example/petitions/x/", ip="203.0.113.7",
    )  # fmt: skip
    cleaned = form.cleaned_data
    supporter = Supporter.objects.get(email=cleaned["email"])
    assert supporter.email == cleaned["email"].lower()
    assert Signature.objects.filter(petition=petition, supporter=supporter).exists()


@override_settings(RALLY_SIGN_LIMIT_PER_IP=1_000_000, RALLY_SIGN_LIMIT_PER_EMAIL=1_000_000)
@given(data=sign_data)
def test_signing_over_http_with_any_input_gives_a_clear_error_or_a_correct_record(client, data):
    petition = the_petition()
    response = client.post(f"/petitions/{petition.slug}/", data)
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 400:
        assert 'id="form-errors"' in response.content.decode()
        return
    form = SignatureForm(data, consent_wording=CONSENT)
    assert form.is_valid()
    supporter = Supporter.objects.get(email=form.cleaned_data["email"])
    assert supporter.signatures.filter(petition=petition).exists()


FORM = "application/x-www-form-urlencoded"
name_bytes = st.one_of(
    st.text(max_size=20).map(lambda text: text.encode("cp1251", errors="replace")),
    st.text(max_size=20).map(lambda text: text.encode("utf-8")),
    st.binary(max_size=20),
    st.binary(max_size=20).map(lambda data: quote_from_bytes(data).encode()),
)


@override_settings(RALLY_SIGN_LIMIT_PER_IP=1_000_000, RALLY_SIGN_LIMIT_PER_EMAIL=1_000_000)
@given(name=name_bytes)
def test_a_form_body_that_is_not_utf8_is_refused_and_stores_nothing(client, name):
    petition = the_petition()
    Supporter.objects.filter(email="bytes@example.org").delete()
    body = b"email=bytes%40example.org&last_name=Lee&country=GB&first_name=" + name
    response = client.post(f"/petitions/{petition.slug}/", body, content_type=FORM)
    try:
        unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        assert response.status_code == 400
        assert not Supporter.objects.filter(email="bytes@example.org").exists()
        return
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        signer = Supporter.objects.get(email="bytes@example.org")
        assert "\ufffd" not in signer.first_name
