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
