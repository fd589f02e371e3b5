"""The dialect: the entry point, absolute hrefs without a trailing slash, pages, tags and
taggings, paths with and without the slash, and answers that match the OpenAPI description."""

import jsonschema_rs
import pytest

from supporters.models import Supporter
from tests.api.conftest import signup_body
from tests.factories import SupporterFactory, TagFactory

pytestmark = pytest.mark.django_db(transaction=True)


def hrefs(value):
    """Yield every href in a HAL document (curies' templates left out)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "href" and isinstance(item, str) and not value.get("templated"):
                yield item
            else:
                yield from hrefs(item)
    elif isinstance(value, list):
        for item in value:
            yield from hrefs(item)


def assert_hrefs_absolute_without_trailing_slash(document, root: str):
    found = list(hrefs(document))
    assert found
    for href in found:
        path = href.split("?", 1)[0]
        assert href.startswith(root), href
        assert not path.endswith("/"), href


def test_the_entry_point_links_every_collection_with_and_without_its_slash(osdi):
    reader = osdi("read")
    for path in ("", "/"):
        response = reader.get(f"{reader.root}{path}")
        assert response.status_code == 200, path
        assert response.headers["Content-Type"] == "application/hal+json"
        entry = response.json()
        assert entry["max_pagesize"] == 100
        assert entry["motd"] and entry["vendor_name"] and entry["osdi_version"]
        links = entry["_links"]
        for relation, path_below in {
            "osdi:people": "people",
            "osdi:tags": "tags",
            "osdi:petitions": "petitions",
            "osdi:messages": "messages",
            "osdi:queries": "queries",
            "osdi:person_signup_helper": "people",
            "docs": "openapi.json",
        }.items():
            assert links[relation]["href"] == reader.url(path_below)
        assert links["self"]["href"] == reader.root
        assert {curie["name"] for curie in links["curies"]} == {"osdi", "rally"}
        assert_hrefs_absolute_without_trailing_slash(entry, reader.root)


def test_every_path_answers_with_and_without_its_trailing_slash_posts_included(osdi):
    writer = osdi("write")
    person = SupporterFactory()
    tag = TagFactory()
    for path in ("people", f"people/{person.uuid}", f"people/{person.uuid}/taggings", "tags",
                 f"tags/{tag.pk}", f"tags/{tag.pk}/taggings"):  # fmt: skip
        assert writer.get(path).status_code == 200, path
        assert writer.get(f"{path}/").status_code == 200, path
    signup = {"person": {"email_addresses": [{"address": "slash@example.org"}]}}
    assert writer.post("people/", signup).status_code == 201
    assert writer.post("tags/", {"name": "slashed"}).status_code == 201
    tagging = {"_links": {"osdi:person": {"href": writer.url(f"people/{person.uuid}")}}}
    made = writer.post(f"tags/{tag.pk}/taggings/", tagging)
    assert made.status_code == 201
    assert writer.put(f"people/{person.uuid}/", {"given_name": "Slash"}).status_code == 200
    assert writer.delete(made.json()["_links"]["self"]["href"] + "/").status_code == 200


def test_pages_link_to_each_other_and_hold_every_person_once(osdi):
    reader = osdi("read")
    people = [SupporterFactory() for _ in range(5)]
    first = reader.get("people?per_page=2").json()
    assert (first["page"], first["per_page"], first["total_pages"], first["total_records"]) == (
        1, 2, 3, 5,
    )  # fmt: skip
    assert "previous" not in first["_links"]
    seen, page = [], first
    while True:
        assert_hrefs_absolute_without_trailing_slash(page, reader.root)
        embedded = page["_embedded"]["osdi:people"]
        assert [{"href": p["_links"]["self"]["href"]} for p in embedded] == page["_links"][
            "osdi:people"
        ]
        seen += [p["identifiers"][0] for p in embedded]
        if "next" not in page["_links"]:
            break
        page = reader.get(page["_links"]["next"]["href"]).json()
    assert seen == [f"rally:{p.uuid}" for p in people]
    assert page["page"] == 3 and "previous" in page["_links"]
    biggest = reader.get("people?per_page=5000").json()
    assert biggest["per_page"] == 100
    empty = osdi("read").get("tags").json()
    assert (empty["total_records"], empty["total_pages"], empty["_embedded"]["osdi:tags"]) == (
        0, 1, [],
    )  # fmt: skip


def test_a_client_follows_links_to_tag_a_person_and_untag_them(osdi):
    writer = osdi("write")
    SupporterFactory(email="ann@example.org")
    entry = writer.get("").json()
    people = writer.get(
        entry["_links"]["osdi:people"]["href"] + "?filter=email_address eq 'ann@example.org'"
    ).json()
    person = people["_embedded"]["osdi:people"][0]
    tag = writer.post(entry["_links"]["osdi:tags"]["href"], {"name": "volunteer"}).json()
    assert (
        writer.post(entry["_links"]["osdi:tags"]["href"], {"name": "volunteer"}).status_code == 200
    )
    taggings_href = tag["_links"]["osdi:taggings"]["href"]
    assert taggings_href == tag["_links"]["self"]["href"] + "/taggings"
    body = {"_links": {"osdi:person": {"href": person["_links"]["self"]["href"]}}}
    made = writer.post(taggings_href, body)
    assert made.status_code == 201
    again = writer.post(taggings_href, body)
    assert again.status_code == 200 and again.json() == made.json()
    tagging = made.json()
    assert tagging["_links"]["osdi:person"]["href"] == person["_links"]["self"]["href"]
    assert tagging["_links"]["osdi:tag"]["href"] == tag["_links"]["self"]["href"]
    assert_hrefs_absolute_without_trailing_slash(tagging, writer.root)
    assert writer.get(tagging["_links"]["self"]["href"]).json() == tagging
    of_person = writer.get(person["_links"]["osdi:taggings"]["href"]).json()
    assert of_person["_embedded"]["osdi:taggings"] == [tagging]
    of_tag = writer.get(taggings_href).json()
    assert of_tag["_embedded"]["osdi:taggings"] == [tagging]
    ann = Supporter.objects.get(email="ann@example.org")
    assert list(ann.tags.values_list("name", flat=True)) == ["volunteer"]
    deleted = writer.delete(tagging["_links"]["self"]["href"])
    assert deleted.status_code == 200 and deleted.json()["notice"]
    assert not ann.tags.exists()
    assert writer.get(tagging["_links"]["self"]["href"]).status_code == 404


def test_answers_match_the_openapi_description(osdi):
    writer = osdi("write")
    person = SupporterFactory(postcode="", country="")
    tag = TagFactory()
    person.tags.add(tag)
    document = writer.get("openapi.json").json()
    assert document["components"]["securitySchemes"]["OSDIToken"] == {
        "type": "apiKey", "in": "header", "name": "OSDI-API-Token",
    }  # fmt: skip
    assert document["servers"] == [{"url": writer.root}]

    def check(path_template: str, method: str, response):
        operation = document["paths"][path_template][method]
        described = operation["responses"][str(response.status_code)]
        schema = described["content"]["application/hal+json"]["schema"]
        jsonschema_rs.validate({**schema, "components": document["components"]}, response.json())

    tagging = writer.post(
        f"tags/{tag.pk}/taggings",
        {"_links": {"osdi:person": {"href": writer.url(f"people/{SupporterFactory().uuid}")}}},
    )
    (tagging_id,) = [tagging.json()["identifiers"][0].split(":")[1]]
    one_tagging = f"tags/{tag.pk}/taggings/{tagging_id}"
    answers = [
        ("/", "get", writer.get("")),
        ("/people", "get", writer.get("people")),
        ("/people", "get", writer.get("people?page=9")),
        ("/people", "get", writer.get("people?filter=x")),
        ("/people", "post", writer.post("people", signup_body("n@example.org"))),
        ("/people", "post", writer.post("people", {"person": {}})),
        ("/people/{person_id}", "get", writer.get(f"people/{person.uuid}")),
        ("/people/{person_id}", "put", writer.put(f"people/{person.uuid}", {"family_name": "Lee"})),
        ("/people/{person_id}/taggings", "get", writer.get(f"people/{person.uuid}/taggings")),
        ("/tags", "get", writer.get("tags")),
        ("/tags", "post", writer.post("tags", {"name": "described"})),
        ("/tags/{tag_id}", "get", writer.get(f"tags/{tag.pk}")),
        ("/tags/{tag_id}/taggings", "get", writer.get(f"tags/{tag.pk}/taggings")),
        ("/tags/{tag_id}/taggings", "post", tagging),
        ("/tags/{tag_id}/taggings/{tagging_id}", "get", writer.get(one_tagging)),
        ("/tags/{tag_id}/taggings/{tagging_id}", "delete", writer.delete(one_tagging)),
    ]  # fmt: skip
    for path_template, method, response in answers:
        check(path_template, method, response)


def test_a_large_collections_count_may_be_seconds_old_but_its_pages_are_exact(osdi, monkeypatch):
    import api.hal

    monkeypatch.setattr(api.hal, "COUNT_CACHE_FROM", 3)
    reader = osdi("read")
    for _ in range(4):
        SupporterFactory()
    assert reader.get("people?per_page=2").json()["total_records"] == 4
    for _ in range(3):
        SupporterFactory()
    first = reader.get("people?per_page=2").json()
    assert first["total_records"] == 4  # as counted a moment ago
    pages = [first]
    while "next" in pages[-1]["_links"]:
        pages.append(reader.get(pages[-1]["_links"]["next"]["href"]).json())
    assert sum(len(page["_embedded"]["osdi:people"]) for page in pages) == 7
    assert (pages[-1]["page"], pages[-1]["total_records"], pages[-1]["total_pages"]) == (4, 7, 4)
    assert reader.get("people?per_page=2&page=5").status_code == 404


def test_a_path_the_api_does_not_have_is_a_json_404_for_any_method(osdi):
    writer = osdi("write")
    for method in ("GET", "POST", "DELETE"):
        for path in ("donations", "people/x/attendances", "v2"):
            response = writer.request(method, f"{writer.root}/../{path}" if path == "v2" else path)
            assert response.status_code == 404, (method, path)
            assert response.headers["Content-Type"] == "application/hal+json"
            assert "entry point" in response.json()["error"]
