"""People: the person signup helper's rules, one person, the list and its filters, PUT."""

import pytest

from privacy.services import supporter_erase
from supporters.models import ConsentRecord, Supporter, Tag
from supporters.signals import supporter_subscribed
from tests.api.conftest import signup_body, stored_counts
from tests.factories import SupporterFactory, TagFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Every way of having left the list that an explicit "subscribed" may undo.
LEFT = ["unsubscribed", "bounced", "complained", "sunset"]


def test_a_new_person_is_subscribed_with_consent_naming_the_token_and_tagged(osdi):
    writer = osdi("helpers", name="website form")
    response = writer.post(
        "people/",
        {
            "person": {
                "given_name": "Ann",
                "family_name": "Lee",
                "email_addresses": [{"address": " Ann@Example.ORG ", "primary": True}],
                "postal_addresses": [{"postal_code": "N1 9GU", "country": "GB"}],
                "languages_spoken": ["fr", "ru"],
                "phone_numbers": [{"number": "0123", "primary": True}],
                "custom_fields": {"shoe_size": "44"},
            },
            "add_tags": ["volunteer", "donor", "volunteer"],
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"] == "application/hal+json"
    ann = Supporter.objects.get(email="ann@example.org")
    assert (ann.first_name, ann.last_name, ann.postcode, str(ann.country), ann.language) == (
        "Ann", "Lee", "N1 9GU", "GB", "ru",
    )  # fmt: skip
    assert ann.status == Supporter.Status.SUBSCRIBED
    assert sorted(ann.tags.values_list("name", flat=True)) == ["donor", "volunteer"]
    (consent,) = ConsentRecord.objects.filter(supporter=ann)
    assert "website form" in consent.wording
    person = response.json()
    assert person["identifiers"] == [f"rally:{ann.uuid}"]
    assert person["given_name"] == "Ann" and person["family_name"] == "Lee"
    assert person["email_addresses"] == [
        {"primary": True, "address": "ann@example.org", "status": "subscribed"}
    ]
    assert person["postal_addresses"] == [
        {"primary": True, "postal_code": "N1 9GU", "country": "GB"}
    ]
    assert person["languages_spoken"] == ["ru"]
    assert person["_links"]["self"]["href"] == writer.url(f"people/{ann.uuid}")


def test_a_known_person_is_matched_by_email_and_only_blanks_are_filled(osdi):
    writer = osdi("write")
    known = SupporterFactory(email="ann@example.org", first_name="Ann", last_name="", postcode="")
    response = writer.post(
        "people",
        signup_body(
            "ANN@example.org",
            given_name="Someone Else",
            family_name="Lee",
            postal_addresses=[{"postal_code": "N1"}],
        ),
    )
    assert response.status_code == 200, response.text
    known.refresh_from_db()
    assert (known.first_name, known.last_name, known.postcode) == ("Ann", "Lee", "N1")
    assert Supporter.objects.count() == 1
    assert not ConsentRecord.objects.exists()
    assert response.json()["identifiers"] == [f"rally:{known.uuid}"]


@pytest.mark.parametrize("status", LEFT)
def test_someone_who_left_stays_out_unless_the_request_says_subscribed(osdi, status):
    writer = osdi("write", name="crm")
    left = SupporterFactory(email="left@example.org", status=status)
    plain = writer.post("people", signup_body("left@example.org"))
    assert plain.status_code == 200, plain.text
    left.refresh_from_db()
    assert left.status == status
    assert plain.json()["email_addresses"][0]["status"] != "subscribed"
    assert not ConsentRecord.objects.exists()

    announced = []

    def receiver(sender, supporter_id, **kwargs):
        announced.append(supporter_id)

    supporter_subscribed.connect(receiver, weak=False)
    try:
        asked = writer.post(
            "people",
            {
                "person": {
                    "email_addresses": [{"address": "left@example.org", "status": "subscribed"}]
                }
            },
        )
    finally:
        supporter_subscribed.disconnect(receiver)
    assert announced == [left.pk]
    assert asked.status_code == 200, asked.text
    left.refresh_from_db()
    assert left.status == Supporter.Status.SUBSCRIBED
    assert (left.suppressed_at, left.suppression_reason, left.unsubscribed_at) == (None, "", None)
    assert asked.json()["email_addresses"][0]["status"] == "subscribed"
    (consent,) = ConsentRecord.objects.filter(supporter=left)
    assert "crm" in consent.wording


def test_the_email_status_is_shown_in_action_networks_words(osdi):
    reader = osdi("read")
    words = {}
    for status in ["subscribed", "unsubscribed", "bounced", "complained", "sunset"]:
        supporter = SupporterFactory(status=status)
        person = reader.get(f"people/{supporter.uuid}").json()
        words[status] = person["email_addresses"][0]["status"]
    assert words == {
        "subscribed": "subscribed",
        "unsubscribed": "unsubscribed",
        "bounced": "bouncing",
        "complained": "spam complaint",
        "sunset": "unsubscribed",
    }


def test_a_request_saying_unsubscribed_unsubscribes_and_a_new_person_arrives_unsubscribed(osdi):
    writer = osdi("write")
    SupporterFactory(email="ann@example.org")
    unsubscribe = {"email_addresses": [{"address": "ann@example.org", "status": "unsubscribed"}]}
    assert writer.post("people", {"person": unsubscribe}).status_code == 200
    assert Supporter.objects.get(email="ann@example.org").status == "unsubscribed"
    new = {"email_addresses": [{"address": "new@example.org", "status": "unsubscribed"}]}
    assert writer.post("people", {"person": new}).status_code == 201
    assert Supporter.objects.get(email="new@example.org").status == "unsubscribed"
    assert not ConsentRecord.objects.exists()


def test_an_erased_person_answers_410_is_never_listed_and_never_comes_back(osdi):
    writer = osdi("write")
    tag = TagFactory(name="volunteer")
    erased = SupporterFactory(email="gone@example.org")
    erased.tags.add(tag)
    kept = SupporterFactory(email="kept@example.org")
    kept.tags.add(tag)
    supporter_erase(supporter_id=erased.pk)
    gone = writer.get(f"people/{erased.uuid}")
    assert gone.status_code == 410 and gone.json()["error"]
    assert writer.get(f"people/{erased.uuid}/taggings").status_code == 410
    assert writer.put(f"people/{erased.uuid}", {"given_name": "X"}).status_code == 410
    listed = writer.get("people").json()
    assert [p["identifiers"] for p in listed["_embedded"]["osdi:people"]] == [
        [f"rally:{kept.uuid}"]
    ]
    assert listed["total_records"] == 1
    taggings = writer.get(f"tags/{tag.pk}/taggings").json()["_embedded"]["osdi:taggings"]
    assert [t["_links"]["osdi:person"]["href"] for t in taggings] == [
        writer.url(f"people/{kept.uuid}")
    ]
    before = stored_counts()
    erased.refresh_from_db()
    # The erased row's placeholder address, which no one has: it brings nothing back either.
    placeholder = writer.post("people", signup_body(erased.email, given_name="Back"))
    assert placeholder.status_code == 410, placeholder.text
    for status in (None, "subscribed"):
        address = {"address": "gone@example.org"} | ({"status": status} if status else {})
        again = writer.post("people", {"person": {"email_addresses": [address]}})
        assert again.status_code == 410, again.text
        assert "erased" in again.json()["error"]
    assert stored_counts() == before


def test_people_are_found_by_email_and_by_modified_date(osdi):
    reader = osdi("read")
    ann = SupporterFactory(email="ann@example.org")
    SupporterFactory(email="bob@example.org")
    Supporter.objects.filter(pk=ann.pk).update(updated_at="2024-01-15T12:00:00Z")

    def found(filter_text):
        response = reader.request("GET", f"people?filter={filter_text}")
        assert response.status_code == 200, response.text
        return [
            p["email_addresses"][0]["address"] for p in response.json()["_embedded"]["osdi:people"]
        ]

    assert found("email_address eq 'ANN@example.org'") == ["ann@example.org"]
    assert found("email_address eq 'nobody@example.org'") == []
    assert found("modified_date lt '2024-02-01'") == ["ann@example.org"]
    assert found("modified_date gt '2024-02-01'") == ["bob@example.org"]
    assert found(
        "modified_date gt '2024-01-01T00:00:00Z' and email_address eq 'ann@example.org'"
    ) == ["ann@example.org"]
    assert found("modified_date gt '2024-01-16' and email_address eq 'ann@example.org'") == []


def test_put_changes_fields_and_status_and_refuses_an_address_someone_else_has(osdi):
    writer = osdi("write")
    ann = SupporterFactory(email="ann@example.org", first_name="Ann")
    SupporterFactory(email="bob@example.org")
    response = writer.put(
        f"people/{ann.uuid}",
        {
            "given_name": "Anna",
            "postal_addresses": [{"country": "FR", "postal_code": "75001"}],
            "email_addresses": [{"address": "anna@example.org", "status": "unsubscribed"}],
        },
    )
    assert response.status_code == 200, response.text
    ann.refresh_from_db()
    assert (ann.first_name, str(ann.country), ann.postcode, ann.email, ann.status) == (
        "Anna", "FR", "75001", "anna@example.org", "unsubscribed",
    )  # fmt: skip
    assert response.json()["given_name"] == "Anna"
    before = stored_counts()
    taken = writer.put(
        f"people/{ann.uuid}",
        {"given_name": "Changed", "email_addresses": [{"address": "BOB@example.org"}]},
    )
    assert taken.status_code == 409 and "email" in taken.json()["error"]
    assert stored_counts() == before


def test_tags_added_by_name_are_made_once(osdi):
    writer = osdi("write")
    TagFactory(name="donor")
    writer.post("people", signup_body("a@example.org") | {"add_tags": ["donor", "new"]})
    writer.post("people", signup_body("b@example.org") | {"add_tags": ["new"]})
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["donor", "new"]
    assert Tag.objects.get(name="new").supporters.count() == 2
