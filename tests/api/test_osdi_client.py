"""An OSDI client, written as a test: it uses Rally as an Action Network script would.

Over real HTTP (pytest-django's live_server, `requests`), it knows only the entry point and
its token. From there it follows HAL links: lists people and pages through them with
`_links.next`, finds one by email, signs one up, tags them and untags them, records a
signature through a petition's helper, and reads messages with their statistics and queries
with their counts. Like Action Network's clients it takes ids from hrefs
(`href.rsplit("/", 1)[-1]`) and appends `/taggings`; it never builds any other path.
"""

import pytest
import requests
from django.utils import timezone

from api.services.tokens import api_token_create
from mailings.reports.ledger import report_counters_rebuild
from supporters.models import Segment, SegmentCondition, Supporter
from tests.factories import (
    DeliveryFactory,
    MailingFactory,
    PetitionFactory,
    SupporterFactory,
    TagFactory,
)

TIMEOUT = 10


class OsdiClient:
    """What an integrator's script holds: a session with the token, and the entry point."""

    def __init__(self, entry_point: str, token: str):
        self.session = requests.Session()
        self.session.headers.update({"OSDI-API-Token": token, "Content-Type": "application/json"})
        self.entry_point = entry_point

    def get(self, url: str, **params) -> dict:
        response = self.session.get(url, params=params, timeout=TIMEOUT)
        return self._json(response, 200)

    def post(self, url: str, body: dict, *, expect=(200, 201)) -> dict:
        return self._json(self.session.post(url, json=body, timeout=TIMEOUT), expect)

    def delete(self, url: str) -> dict:
        return self._json(self.session.delete(url, timeout=TIMEOUT), 200)

    @staticmethod
    def _json(response: requests.Response, expect) -> dict:
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert response.status_code in expected, (response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/hal+json")
        return response.json()  # every answer is JSON, a DELETE's too

    def walk(self, url: str, collection: str, **params) -> list[dict]:
        """Return every item of a collection, following `_links.next` from page to page."""
        items, page = [], self.get(url, **params)
        total = page["total_records"]
        while True:
            items.extend(page["_embedded"][f"osdi:{collection}"])
            if "next" not in page["_links"]:
                break
            page = self.get(page["_links"]["next"]["href"])
        assert len(items) == total
        return items


def href(resource: dict, relation: str = "self") -> str:
    return resource["_links"][relation]["href"]


def id_from(url: str) -> str:
    """Take an id from an href, as Action Network's clients do."""
    return url.rsplit("/", 1)[-1]


@pytest.fixture
def world(transactional_db):
    """Supporters, a tag, a petition, a sent mailing with a report, and a saved segment."""
    supporters = [
        SupporterFactory(email=f"person{number}@example.org", first_name=f"Person{number}")
        for number in range(7)
    ]
    TagFactory(name="existing")
    petition = PetitionFactory(title="Free the marchers")
    mailing = MailingFactory(name="The march appeal")
    now = timezone.now()
    for supporter in supporters[:4]:
        DeliveryFactory(mailing=mailing, supporter=supporter)
    DeliveryFactory(mailing=mailing, supporter=supporters[4], opened_at=now, clicked_at=now)
    report_counters_rebuild(mailing_id=mailing.pk)
    segment = Segment.objects.create(name="Speak Russian")
    SegmentCondition.objects.create(
        segment=segment, kind=SegmentCondition.Kind.LANGUAGE, language="ru"
    )
    Supporter.objects.filter(pk__in=[supporters[0].pk, supporters[1].pk]).update(language="ru")
    return {"petition": petition, "mailing": mailing, "segment": segment}


def test_an_osdi_client_follows_links_from_the_entry_point(live_server, world):
    token = api_token_create(name="osdi-client", scope="write").secret
    client = OsdiClient(f"{live_server.url}/api/osdi/v1/", token)

    aep = client.get(client.entry_point)
    assert aep["max_pagesize"] >= 25
    links = aep["_links"]

    # People: every one of them, three a page, through `next`.
    people = client.walk(href(aep, "osdi:people"), "people", per_page=3)
    first_page = client.get(href(aep, "osdi:people"), per_page=3)
    # The next page starts after the last id of this one, and is the page asked by number.
    assert "after=" in href(first_page, "next")
    assert client.get(href(first_page, "next")) == {
        **client.get(href(aep, "osdi:people"), per_page=3, page=2),
        "_links": client.get(href(first_page, "next"))["_links"],
    }
    addresses = {person["email_addresses"][0]["address"] for person in people}
    assert addresses == {f"person{number}@example.org" for number in range(7)}

    # One person, by email, with Action Network's filter.
    found = client.get(href(aep, "osdi:people"), filter="email_address eq 'person3@example.org'")
    (person3,) = found["_embedded"]["osdi:people"]
    assert person3["given_name"] == "Person3"
    assert client.get(href(person3)) == person3

    # Sign someone up with the person signup helper.
    signed_up = client.post(
        href(aep, "osdi:person_signup_helper"),
        {
            "person": {
                "given_name": "Nadia",
                "family_name": "Petrova",
                "email_addresses": [{"address": "nadia@example.org"}],
                "postal_addresses": [{"country": "LT"}],
            },
            "add_tags": ["existing"],
        },
    )
    assert signed_up["email_addresses"][0]["address"] == "nadia@example.org"
    nadia = href(signed_up)

    # Make a tag, tag Nadia with it, read the tagging back, and take it off again.
    tags_url = href(aep, "osdi:tags")
    tag = client.post(tags_url, {"name": "volunteer"})
    assert tag["name"] == "volunteer"
    taggings_url = f"{tags_url}/{id_from(href(tag))}/taggings"
    assert taggings_url == href(tag, "osdi:taggings")
    tagging = client.post(taggings_url, {"_links": {"osdi:person": {"href": nadia}}})
    read_back = client.get(href(tagging))
    assert href(read_back, "osdi:person") == nadia
    assert href(read_back, "osdi:tag") == href(tag)
    on_the_tag = client.walk(taggings_url, "taggings")
    assert [href(item) for item in on_the_tag] == [href(tagging)]
    notice = client.delete(href(tagging))
    assert notice  # a JSON body, as Action Network's DELETE answers
    assert client.walk(taggings_url, "taggings") == []

    # Sign a petition through its record signature helper, then meet the signer by link.
    petitions = client.walk(href(aep, "osdi:petitions"), "petitions")
    (petition,) = [item for item in petitions if item["title"] == "Free the marchers"]
    signature = client.post(
        href(petition, "osdi:record_signature_helper"),
        {
            "person": {
                "given_name": "Ivan",
                "family_name": "Sidorov",
                "email_addresses": [{"address": "ivan@example.org"}],
            },
            "add_tags": ["volunteer"],
            "action_network:referrer_data": {"source": "partner-newsletter"},
        },
    )
    ivan = client.get(href(signature, "osdi:person"))
    assert ivan["given_name"] == "Ivan"
    assert ivan["email_addresses"][0]["status"] == "subscribed"
    signatures = client.walk(href(petition, "osdi:signatures"), "signatures")
    assert [href(item) for item in signatures] == [href(signature)]
    assert client.get(href(petition))["total_signatures"] == 1
    his_signatures = client.walk(href(ivan, "osdi:signatures"), "signatures")
    assert [href(item) for item in his_signatures] == [href(signature)]
    ivan_taggings = client.walk(href(ivan, "osdi:taggings"), "taggings")
    assert [href(item, "osdi:tag") for item in ivan_taggings] == [href(tag)]

    # Messages, with what their reports counted.
    messages = client.walk(href(aep, "osdi:messages"), "messages")
    (message,) = [item for item in messages if item["name"] == "The march appeal"]
    assert message["statistics"]["sent"] == 5
    assert message["statistics"]["opened"] == 1 and message["statistics"]["clicked"] == 1
    assert client.get(href(message))["statistics"] == message["statistics"]

    # Queries, with their counts.
    queries = client.walk(href(aep, "osdi:queries"), "queries")
    (query,) = queries
    assert (query["name"], query["count"]) == ("Speak Russian", 2)
    assert id_from(href(query)) == str(world["segment"].pk)
    assert links["osdi:queries"]["href"] == href(aep, "osdi:queries")
