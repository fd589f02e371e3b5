"""Tokens in links: a tampered, expired or foreign one is refused, and nothing changes.

Foreign: a real token of another kind (each kind has its own salt), of another supporter,
signature, mailing or petition, or signed with another key.
"""

import time

import pytest
from django.core import signing
from django.db import connection

from campaigns.links import (
    CONFIRMATION_SALT,
    PETITION_LINK_SALT,
    make_confirmation_token,
    make_petition_token,
)
from campaigns.models import Signature
from mailings.content.tracked_links import (
    CLICK_SALT,
    OPEN_SALT,
    make_click_token,
    make_open_token,
)
from mailings.models import Delivery, LinkClick
from supporters.models import Supporter
from supporters.tokens import UNSUBSCRIBE_SALT, make_unsubscribe_token
from tests.factories import PetitionFactory, SignatureFactory, SupporterFactory
from tests.security.walk import Writes
from tests.security.world import world_build

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def tampered(token: str) -> str:
    """Return the token with one character of its value changed (its signature kept)."""
    value, _, signature = token.rpartition(":")
    flipped = "2" if value[0] != "2" else "3"
    return f"{flipped}{value[1:]}:{signature}"


def made_days_ago(days: int, make):
    """Make a timestamped token as if `days` days ago."""
    real = signing.TimestampSigner.timestamp

    def then(self):
        return signing.b62_encode(int(time.time()) - days * DAY)

    signing.TimestampSigner.timestamp = then
    try:
        return make()
    finally:
        signing.TimestampSigner.timestamp = real


def signed_elsewhere(token: str, salt: str) -> str:
    """Return the token's value (and timestamp) signed with another installation's key."""
    value = token.rpartition(":")[0]
    return signing.Signer(key="another-rally-installation", salt=salt).sign(value)


def writes_of(client, method: str, path: str, data=None):
    writes = Writes()
    with connection.execute_wrapper(writes):
        response = getattr(client, method)(path, data or {})
    return response, writes.found


@pytest.fixture
def world():
    return world_build()


# Unsubscribe -----------------------------------------------------------------------------------


def unsubscribe_refusals(world):
    supporter, mailing = world.supporter, world.sent_mailing
    token = make_unsubscribe_token(supporter.pk, mailing.pk)
    return {
        "tampered": tampered(token),
        "cut short": token[:-3],
        "signed with another key": signed_elsewhere(token, UNSUBSCRIBE_SALT),
        "a petition link's": make_petition_token(
            supporter_id=supporter.pk, mailing_id=mailing.pk, petition_id=world.petition.pk
        ),
        "a confirmation link's": make_confirmation_token(signature_id=world.signature.pk),
        "a tracked link's": make_click_token(
            mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=0
        ),
    }


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_bad_unsubscribe_token_is_refused_and_unsubscribes_nobody(client, world, method):
    for kind, token in unsubscribe_refusals(world).items():
        for path in (f"/unsubscribe/{token}/", f"/unsubscribe/{token}/preferences/"):
            response, writes = writes_of(
                client, method, path, {"action": "pause", "days": "30"} if method == "post" else {}
            )
            assert response.status_code == 400, (kind, path)
            assert "link is not recognised" in response.content.decode(), (kind, path)
            assert not writes, (kind, path, writes)
    assert Supporter.objects.get(pk=world.supporter.pk).status == Supporter.Status.SUBSCRIBED


def test_an_unsubscribe_token_unsubscribes_only_the_supporter_it_names(client, world):
    other = SupporterFactory()
    token = make_unsubscribe_token(other.pk, world.sent_mailing.pk)
    assert client.post(f"/unsubscribe/{token}/").status_code == 200
    assert Supporter.objects.get(pk=other.pk).status == Supporter.Status.UNSUBSCRIBED
    assert Supporter.objects.get(pk=world.supporter.pk).status == Supporter.Status.SUBSCRIBED


# Confirmation ----------------------------------------------------------------------------------


@pytest.fixture
def unconfirmed(world):
    petition = PetitionFactory(requires_confirmation=True)
    return SignatureFactory(petition=petition, confirmed_at=None)


def test_a_bad_confirmation_token_is_refused_and_confirms_nothing(client, world, unconfirmed):
    token = make_confirmation_token(signature_id=unconfirmed.pk)
    refusals = {
        "tampered": tampered(token),
        "cut short": token[:-3],
        "expired": made_days_ago(8, lambda: make_confirmation_token(signature_id=unconfirmed.pk)),
        "signed with another key": signed_elsewhere(token, CONFIRMATION_SALT),
        "an unsubscribe link's": make_unsubscribe_token(unconfirmed.pk),
        "a petition link's": make_petition_token(
            supporter_id=unconfirmed.pk, mailing_id=None, petition_id=unconfirmed.petition.pk
        ),
    }
    slug = unconfirmed.petition.slug
    for kind, bad in refusals.items():
        for method in ("get", "post"):
            response, writes = writes_of(client, method, f"/petitions/{slug}/confirm/{bad}/")
            assert response.status_code == 400, (kind, method)
            assert not writes, (kind, method, writes)
    assert Signature.objects.get(pk=unconfirmed.pk).confirmed_at is None


def test_a_confirmation_token_a_day_short_of_expiry_still_confirms(client, unconfirmed):
    token = made_days_ago(6, lambda: make_confirmation_token(signature_id=unconfirmed.pk))
    response = client.post(f"/petitions/{unconfirmed.petition.slug}/confirm/{token}/")
    assert response.status_code == 302
    assert Signature.objects.get(pk=unconfirmed.pk).confirmed_at is not None


def test_a_confirmation_link_posted_to_another_petition_is_refused_and_confirms_nothing(
    client, world, unconfirmed
):
    token = make_confirmation_token(signature_id=unconfirmed.pk)
    response = client.post(f"/petitions/{world.petition.slug}/confirm/{token}/")
    assert response.status_code == 400
    assert Signature.objects.get(pk=unconfirmed.pk).confirmed_at is None


# Personal petition links -----------------------------------------------------------------------


def test_a_bad_personal_link_greets_nobody_and_signs_nobody(client, world):
    supporter, mailing, petition = world.supporter, world.sent_mailing, world.petition
    token = make_petition_token(
        supporter_id=supporter.pk, mailing_id=mailing.pk, petition_id=petition.pk
    )
    path = f"/petitions/{petition.slug}/"
    # The real link greets the supporter by a masked address: what the bad ones must not do.
    assert "r•••@example.org" in client.get(path, {"t": token}).content.decode()
    Signature.objects.filter(supporter=supporter).delete()
    refusals = {
        "tampered": tampered(token),
        "cut short": token[:-3],
        "signed with another key": signed_elsewhere(token, PETITION_LINK_SALT),
        "an unsubscribe link's": make_unsubscribe_token(supporter.pk, mailing.pk),
        "a tracked link's": make_click_token(
            mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=0
        ),
    }
    for kind, bad in refusals.items():
        page = client.get(path, {"t": bad}).content.decode()
        assert "•••@" not in page and supporter.first_name not in page, kind
        response = client.post(path, {"t": bad})
        assert response.status_code == 400, kind  # the blank form, refused as incomplete
    assert not Signature.objects.filter(supporter=supporter).exists()


def test_a_personal_link_signs_only_the_petition_it_was_made_for(client, world):
    supporter, mailing, mine = world.supporter, world.sent_mailing, world.petition
    another = PetitionFactory()
    Signature.objects.filter(supporter=supporter).delete()
    made_for_mine = make_petition_token(
        supporter_id=supporter.pk, mailing_id=mailing.pk, petition_id=mine.pk
    )
    # As tokens were before they named their petition: they came as the mailing's own
    # {{ petition_url }}, and fit the mailing's petition alone.
    old_style = signing.Signer(salt=PETITION_LINK_SALT).sign(f"{supporter.pk}-{mailing.pk}")
    for token in (made_for_mine, old_style):
        path = f"/petitions/{another.slug}/"
        assert "•••@" not in client.get(path, {"t": token}).content.decode()
        assert client.post(path, {"t": token}).status_code == 400
        assert not another.signatures.exists()
    assert (
        "r•••@example.org"
        in client.get(f"/petitions/{mine.slug}/", {"t": old_style}).content.decode()
    )
    assert client.post(f"/petitions/{mine.slug}/", {"t": made_for_mine}).status_code == 302
    assert mine.signatures.filter(supporter=supporter, mailing=mailing).exists()


# Tracked links and the open pixel --------------------------------------------------------------


def test_a_bad_tracked_link_leads_nowhere_and_records_nothing(client, world):
    supporter, mailing = world.supporter, world.sent_mailing

    def click(**changes):
        names = {"mailing_id": mailing.pk, "supporter_id": supporter.pk, "link_index": 0}
        return lambda: make_click_token(**{**names, **changes})

    token = click()()
    assert client.head(f"/r/{token}/").status_code == 302  # the real one leads on
    refusals = {
        "tampered": tampered(token),
        "cut short": token[:-3],
        "expired": made_days_ago(366, click()),
        "signed with another key": signed_elsewhere(token, CLICK_SALT),
        "a link the mailing does not have": click(link_index=99)(),
        "of a mailing that does not exist": click(mailing_id=999_999)(),
        "an open pixel's": make_open_token(mailing_id=mailing.pk, supporter_id=supporter.pk),
        "an unsubscribe link's": make_unsubscribe_token(supporter.pk, mailing.pk),
    }
    for kind, bad in refusals.items():
        response, writes = writes_of(client, "get", f"/r/{bad}/")
        assert response.status_code == 404, kind
        assert not writes, (kind, writes)
    assert not LinkClick.objects.exists()


def test_a_bad_open_pixel_token_records_no_open(client, world):
    supporter, mailing = world.supporter, world.sent_mailing

    def opened(**changes):
        names = {"mailing_id": mailing.pk, "supporter_id": supporter.pk}
        return lambda: make_open_token(**{**names, **changes})

    token = opened()()
    refusals = {
        "tampered": tampered(token),
        "expired": made_days_ago(366, opened()),
        "signed with another key": signed_elsewhere(token, OPEN_SALT),
        "a tracked link's": make_click_token(
            mailing_id=mailing.pk, supporter_id=supporter.pk, link_index=0
        ),
    }
    for kind, bad in refusals.items():
        response, writes = writes_of(client, "get", f"/o/{bad}.gif")
        assert response.status_code == 200 and response["Content-Type"] == "image/gif", kind
        assert not writes, (kind, writes)
    assert Delivery.objects.get(mailing=mailing, supporter=supporter).opened_at is None
