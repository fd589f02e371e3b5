"""Each bad input of the API gets a clear JSON error with a 4xx, and nothing is written."""

import pytest

from tests.api.conftest import signup_body, stored_counts
from tests.factories import SupporterFactory, TagFactory

pytestmark = pytest.mark.django_db(transaction=True)


def refused(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/hal+json"
    return response.json()["error"]


@pytest.fixture
def world():
    tag = TagFactory(name="volunteer")
    person = SupporterFactory(email="ann@example.org", first_name="Ann")
    person.tags.add(tag)
    return {"tag": tag, "person": person}


def test_every_bad_input_is_a_clear_json_4xx_that_writes_nothing(osdi, world):
    writer = osdi("write")
    person, tag = world["person"], world["tag"]
    person_href = writer.url(f"people/{person.uuid}")
    before = stored_counts()
    cases = [
        # A malformed filter, and filters Rally does not take.
        (writer.get("people?filter=email_address eq ann@example.org"), 400, "filter"),
        (writer.get("people?filter=given_name eq 'Ann'"), 400, "given_name"),
        (writer.get("people?filter=email_address ne 'a@example.org'"), 400, "eq"),
        (writer.get("people?filter=modified_date gt 'last week'"), 400, "date"),
        (writer.get("people?filter=email_address eq 'a' or email_address eq 'b'"), 400, "and"),
        (writer.get("people?filter="), 400, "empty"),
        (writer.get("tags?filter=name eq 'x'"), 400, "name"),
        # A page past the end, or no page at all.
        (writer.get("people?page=3"), 404, "past the end"),
        (writer.get("people?page=0"), 400, "page"),
        (writer.get("people?page=two"), 400, "page"),
        (writer.get("people?per_page=-1"), 400, "per_page"),
        # A body that is not JSON, or not an object.
        (
            writer.post("people", data=b"given_name=Ann", headers={"Content-Type": "text/plain"}),
            400,
            "JSON",
        ),
        (
            writer.post("people", data=b"{", headers={"Content-Type": "application/json"}),
            400,
            "JSON",
        ),
        (writer.post("people", ["a"]), 400, "object"),
        (
            writer.put(
                f"people/{person.uuid}",
                data=b"\xff\xfe",
                headers={"Content-Type": "application/json"},
            ),
            400,
            "JSON",
        ),
        # Unknown fields, at each level.
        (writer.post("people", signup_body("b@example.org") | {"add_tag": ["x"]}), 400, "add_tag"),
        (writer.post("people", signup_body("b@example.org", nickname="B")), 400, "nickname"),
        (
            writer.post(
                "people",
                {"person": {"email_addresses": [{"address": "b@example.org", "verified": True}]}},
            ),
            400,
            "verified",
        ),
        (
            writer.put(f"people/{person.uuid}", {"given_name": "X", "shoe_size": 44}),
            400,
            "shoe_size",
        ),
        (writer.post("tags", {"name": "x", "colour": "red"}), 400, "colour"),
        # A person without an email, or with a bad one.
        (writer.post("people", {"person": {"given_name": "Nobody"}}), 400, "email"),
        (writer.post("people", {"person": {"email_addresses": []}}), 400, "email"),
        (writer.post("people", {"person": {"email_addresses": [{"primary": True}]}}), 400, "email"),
        (writer.post("people", signup_body("not-an-address")), 400, "email"),
        (writer.post("people", {"add_tags": ["x"]}), 400, "person"),
        # Values of the wrong kind or out of range.
        (writer.post("people", signup_body("b@example.org", given_name=7)), 400, "given_name"),
        (
            writer.post("people", signup_body("b@example.org", given_name="x" * 101)),
            400,
            "given_name",
        ),
        (writer.post("people", signup_body("b@example.org", given_name="a\x00b")), 400, "NUL"),
        (
            writer.post(
                "people", signup_body("b@example.org", postal_addresses=[{"country": "XX"}])
            ),
            400,
            "country",
        ),
        (
            writer.post(
                "people",
                {
                    "person": {
                        "email_addresses": [{"address": "b@example.org", "status": "bouncing"}]
                    }
                },
            ),
            400,
            "status",
        ),
        (
            writer.post("people", signup_body("b@example.org") | {"add_tags": "volunteer"}),
            400,
            "add_tags",
        ),
        (writer.post("people", signup_body("b@example.org") | {"add_tags": [""]}), 400, "add_tags"),
        # Fields Rally sets aside, of the wrong kind all the same; null where a value must be.
        (
            writer.post("people", signup_body("b@example.org", custom_fields="tall")),
            400,
            "custom_fields",
        ),
        (
            writer.post("people", signup_body("b@example.org", phone_numbers=["0123"])),
            400,
            "phone_numbers",
        ),
        (
            writer.post(
                "people",
                {"person": {"email_addresses": [{"address": "b@example.org", "primary": "yes"}]}},
            ),
            400,
            "primary",
        ),
        (
            writer.post(
                "people",
                {"person": {"email_addresses": [{"address": "b@example.org", "status": None}]}},
            ),
            400,
            "status",
        ),
        (
            writer.post(
                "people", signup_body("b@example.org", postal_addresses=[{"country": "gb"}])
            ),
            400,
            "country",
        ),
        (
            writer.post(
                "people", signup_body("b@example.org", postal_addresses=[{"postal_code": None}])
            ),
            400,
            "postal_code",
        ),
        (
            writer.post("people", signup_body("b@example.org", languages_spoken=None)),
            400,
            "languages_spoken",
        ),
        (writer.post("tags", {"name": "x", "identifiers": "rally:1"}), 400, "identifiers"),
        (
            writer.post("people", data=b"[" * 100000, headers={"Content-Type": "application/json"}),
            400,
            "nested",
        ),
        # A tagging for a missing tag or a missing person, or with no person.
        (
            writer.post("tags/999999/taggings", {"_links": {"osdi:person": {"href": person_href}}}),
            404,
            "tag",
        ),
        (
            writer.post("tags/nope/taggings", {"_links": {"osdi:person": {"href": person_href}}}),
            404,
            "tag",
        ),
        (
            writer.post(
                f"tags/{tag.pk}/taggings",
                {
                    "_links": {
                        "osdi:person": {
                            "href": writer.url("people/00000000-0000-4000-8000-000000000000")
                        }
                    }
                },
            ),
            404,
            "person",
        ),
        (
            writer.post(
                f"tags/{tag.pk}/taggings",
                {"_links": {"osdi:person": {"href": "https://elsewhere.example/x"}}},
            ),
            400,
            "person",
        ),
        (writer.post(f"tags/{tag.pk}/taggings", {}), 400, "osdi:person"),
        # Unknown ids, and methods a path does not take.
        (writer.get("people/not-a-uuid"), 404, "person"),
        (writer.get("people/00000000-0000-4000-8000-000000000000"), 404, "person"),
        (writer.get("tags/999999"), 404, "tag"),
        (writer.get("tags/²"), 404, "tag"),
        (writer.get(f"tags/{tag.pk}/taggings/999999"), 404, "tagging"),
        (writer.delete(f"tags/{tag.pk}/taggings/999999"), 404, "tagging"),
        (writer.delete(f"people/{person.uuid}"), 405, "DELETE"),
        (writer.put("people", {"given_name": "X"}), 405, "PUT"),
    ]
    for response, status, mentioned in cases:
        message = refused(response, status)
        assert mentioned.lower() in message.lower(), (
            response.request.method,
            response.request.url,
            message,
        )
    assert stored_counts() == before


def test_a_wrong_scope_is_403_and_writes_nothing(osdi, world):
    before = stored_counts()
    reader, helper = osdi("read"), osdi("helpers")
    assert "read" in refused(reader.post("people", signup_body("b@example.org")), 403)
    tagging = {"_links": {"osdi:person": {"href": reader.url(f"people/{world['person'].uuid}")}}}
    assert "signup helpers" in refused(
        helper.post(f"tags/{world['tag'].pk}/taggings", tagging), 403
    )
    assert stored_counts() == before
