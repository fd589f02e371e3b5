"""Each web process shows a petition as read a few seconds ago; signing checks the database."""

import pytest

from campaigns import selectors
from campaigns.models import Signature
from tests.campaigns.test_sign import sign
from tests.factories import PetitionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def petition_cache(settings):
    settings.RALLY_PETITION_CACHE_SECONDS = 60
    selectors._published.clear()
    yield
    selectors._published.clear()


def test_an_edit_shows_once_the_cached_read_expires(client, settings, petition_cache):
    petition = PetitionFactory(title="Free the journalists")
    assert "Free the journalists" in client.get(f"/petitions/{petition.slug}/").content.decode()
    petition.title = "Free the journalists and their lawyers"
    petition.save(update_fields=["title"])
    # Within the cache time this process still shows what it read.
    assert "and their lawyers" not in client.get(f"/petitions/{petition.slug}/").content.decode()
    settings.RALLY_PETITION_CACHE_SECONDS = 0
    assert "and their lawyers" in client.get(f"/petitions/{petition.slug}/").content.decode()


def test_a_petition_closed_since_it_was_read_takes_no_signature(client, petition_cache):
    petition = PetitionFactory()
    assert client.get(f"/petitions/{petition.slug}/").status_code == 200
    petition.is_open = False
    petition.save(update_fields=["is_open"])
    response = sign(client, petition)
    assert response.status_code == 409
    assert "closed" in response.content.decode()
    assert not Signature.objects.exists()
    # The shared read was not changed by that request: only a copy was marked closed.
    assert selectors.petition_published(petition.slug).is_open


def test_an_unknown_slug_is_a_404_and_is_not_cached(client, petition_cache):
    assert client.get("/petitions/no-such-petition/").status_code == 404
    assert "no-such-petition" not in selectors._published


def test_a_cached_page_gives_every_reader_their_own_working_csrf_token(petition_cache):
    from django.test import Client

    petition = PetitionFactory()
    readers = [Client(enforce_csrf_checks=True) for _ in range(2)]
    pages = [reader.get(f"/petitions/{petition.slug}/").content.decode() for reader in readers]
    tokens = [page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0] for page in pages]
    assert tokens[0] != tokens[1] and "placeholder" not in pages[1]
    # The same page otherwise: the second reader was served what the first one's visit rendered.
    assert pages[0].replace(tokens[0], "") == pages[1].replace(tokens[1], "")
    for number, (reader, token) in enumerate(zip(readers, tokens, strict=True)):
        response = sign(
            reader, petition, email=f"reader{number}@example.org", csrfmiddlewaretoken=token
        )
        assert response.status_code == 302
    assert Signature.objects.count() == 2


def test_a_personal_link_page_is_never_cached(client, petition_cache):
    from campaigns.links import make_petition_token
    from tests.factories import SupporterFactory

    petition = PetitionFactory()
    ann, bob = SupporterFactory(first_name="Ann"), SupporterFactory(first_name="Bob")
    for supporter in (ann, bob):
        token = make_petition_token(
            supporter_id=supporter.pk, mailing_id=None, petition_id=petition.pk
        )
        page = client.get(f"/petitions/{petition.slug}/", {"t": token}).content.decode()
        assert f"Hello, {supporter.first_name}!" in page
