"""Tags and their taggings (a tag on a person)."""

import re

from django.db import IntegrityError, transaction

from api.filters import modified_date_filtered
from api.hal import (
    ApiError,
    bad_request,
    collection_page,
    endpoint,
    hal_response,
    not_found,
    notice_response,
    refuse_unknown_fields,
    refuse_wrong_kinds,
)
from api.openapi import (
    DATE_TIME,
    PAGE_PARAMETERS,
    described_response,
    filter_parameter,
    operation,
    page_of,
    path_parameter,
    ref,
)
from api.people_input import tag_names
from api.representations.people import tag_representation, tagging_representation
from api.selectors import Tagging, person_by_public_id, whole_number
from api.services.taggings import tagging_create, tagging_delete
from supporters.models import Supporter, Tag

TAG_FIELDS = frozenset({"name", "identifiers", "created_date", "modified_date", "_links"})
TAG_KINDS = {
    "identifiers": "strings",
    "created_date": "string",
    "modified_date": "string",
    "_links": "object",
}
TAGGING_FIELDS = frozenset({"_links", "identifiers", "item_type", "created_date", "modified_date"})
TAGGING_KINDS = {**TAG_KINDS, "item_type": "string"}
# A person's href, as this API gives it: …/people/<uuid>, with or without a trailing slash.
PERSON_HREF = re.compile(r"/people/([0-9a-fA-F-]{32,36})/?$")


def _tag(tag_id: str) -> Tag:
    tag = Tag.objects.filter(pk=whole_number(tag_id, "tag")).first()
    if tag is None:
        raise not_found("tag")
    return tag


def tags_list(request):
    # A tag is never changed once made: its modified date is its creation.
    tags = modified_date_filtered(request, Tag.objects.order_by("id"), column="created_at")
    return hal_response(
        collection_page(
            request,
            tags,
            collection="tags",
            path="tags",
            represent=tag_representation,
            base_url=request.base_url,
        )
    )


def tag_create(request):
    """Make a tag by name, or return the one of that name (as Action Network does)."""
    body = request.json
    refuse_unknown_fields(body, TAG_FIELDS)
    refuse_wrong_kinds(body, TAG_KINDS)
    if "name" not in body:
        raise bad_request('a tag needs a name: {"name": "…"}')
    (name,) = tag_names([body["name"]], field="name")
    try:
        with transaction.atomic():
            tag, created = Tag.objects.get_or_create(name=name)
    except IntegrityError:
        tag, created = Tag.objects.get(name=name), False
    request.written.append(f"tag:{tag.pk}")
    return hal_response(
        tag_representation(tag, base_url=request.base_url), status=201 if created else 200
    )


def tag_detail(request, tag_id: str):
    return hal_response(tag_representation(_tag(tag_id), base_url=request.base_url))


def _represent_tagging(row, *, base_url):
    return tagging_representation(
        tagging_id=row[0], tag_id=row[1], supporter_uuid=row[2], base_url=base_url
    )


def tag_taggings(request, tag_id: str):
    tag = _tag(tag_id)
    taggings = (
        Tagging.objects.filter(tag_id=tag.pk)
        .exclude(supporter__status=Supporter.Status.ERASED)
        .order_by("id")
        .values_list("id", "tag_id", "supporter__uuid")
    )
    return hal_response(
        collection_page(
            request,
            taggings,
            collection="taggings",
            path=f"tags/{tag.pk}/taggings",
            represent=_represent_tagging,
            base_url=request.base_url,
        )
    )


def tagging_add(request, tag_id: str):
    """Tag the person `_links["osdi:person"]["href"]` names."""
    tag = _tag(tag_id)
    body = request.json
    refuse_unknown_fields(body, TAGGING_FIELDS)
    refuse_wrong_kinds(body, TAGGING_KINDS)
    links = body.get("_links")
    person_link = links.get("osdi:person") if isinstance(links, dict) else None
    href = person_link.get("href") if isinstance(person_link, dict) else None
    if not isinstance(href, str):
        raise bad_request(
            'a tagging needs its person: {"_links": {"osdi:person": {"href": "…/people/<id>"}}}'
        )
    match = PERSON_HREF.search(href.split("?", 1)[0])
    if match is None:
        raise bad_request("_links.osdi:person.href is not the href of a person of this API")
    try:
        supporter = person_by_public_id(match.group(1))
    except ApiError as error:
        # A tagging of someone missing or erased: there is nobody to tag.
        raise not_found("person") from error
    tagging_id, created = tagging_create(tag_id=tag.pk, supporter_id=supporter.pk)
    request.written.append(f"tagging:{tagging_id}")
    return hal_response(
        tagging_representation(
            tagging_id=tagging_id,
            tag_id=tag.pk,
            supporter_uuid=supporter.uuid,
            base_url=request.base_url,
        ),
        status=201 if created else 200,
    )


def _tagging_row(tag_id: str, tagging_id: str):
    row = (
        Tagging.objects.filter(
            pk=whole_number(tagging_id, "tagging"), tag_id=whole_number(tag_id, "tag")
        )
        .exclude(supporter__status=Supporter.Status.ERASED)
        .values_list("id", "tag_id", "supporter__uuid")
        .first()
    )
    if row is None:
        raise not_found("tagging")
    return row


def tagging_detail(request, tag_id: str, tagging_id: str):
    return hal_response(
        _represent_tagging(_tagging_row(tag_id, tagging_id), base_url=request.base_url)
    )


def tagging_remove(request, tag_id: str, tagging_id: str):
    row = _tagging_row(tag_id, tagging_id)
    tagging_delete(tag_id=row[1], tagging_id=row[0])
    request.written.append(f"tagging:{row[0]}")
    return notice_response("The tagging was deleted: the tag is no longer on the person.")


tags_view = endpoint({"GET": tags_list, "POST": tag_create})
tag_view = endpoint({"GET": tag_detail})
tag_taggings_view = endpoint({"GET": tag_taggings, "POST": tagging_add})
tagging_view = endpoint({"GET": tagging_detail, "DELETE": tagging_remove})


OPENAPI_SCHEMAS = {
    "Tag": {
        "type": "object",
        "required": ["identifiers", "created_date", "modified_date", "name", "_links"],
        "properties": {
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "created_date": DATE_TIME,
            "modified_date": DATE_TIME,
            "name": {"type": "string"},
            "_links": {"$ref": "#/components/schemas/Links"},
        },
    },
    "TagInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "created_date": {"type": "string"},
            "modified_date": {"type": "string"},
            "_links": {"type": "object"},
        },
    },
    "TaggingInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["_links"],
        "properties": {
            "_links": {
                "type": "object",
                "required": ["osdi:person"],
                "properties": {
                    "osdi:person": {
                        "type": "object",
                        "required": ["href"],
                        "properties": {"href": {"type": "string"}},
                    }
                },
            },
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "item_type": {"type": "string"},
            "created_date": {"type": "string"},
            "modified_date": {"type": "string"},
        },
    },
}

TAG_ID = path_parameter("tag_id", "The tag's id")
TAGGING_ID = path_parameter("tagging_id", "The tagging's id")
OPENAPI_PATHS = {
    "/tags": {
        "get": operation(
            "List tags",
            {"200": described_response("A page of tags", page_of("tags", "Tag"))},
            errors=("400", "401", "403", "404", "429"),
            parameters=[*PAGE_PARAMETERS, filter_parameter("modified_date gt '2024-01-31'")],
        ),
        "post": operation(
            "Make a tag, or return the tag that has this name",
            {
                "200": described_response("The tag of this name, made earlier", ref("Tag")),
                "201": described_response("A new tag", ref("Tag")),
            },
            errors=("400", "401", "403", "429"),
            body=ref("TagInput"),
        ),
    },
    "/tags/{tag_id}": {
        "get": operation(
            "One tag",
            {"200": described_response("The tag", ref("Tag"))},
            errors=("401", "403", "404", "429"),
            parameters=[TAG_ID],
        ),
    },
    "/tags/{tag_id}/taggings": {
        "get": operation(
            "The taggings of one tag (never of an erased person)",
            {"200": described_response("A page of taggings", page_of("taggings", "Tagging"))},
            errors=("400", "401", "403", "404", "429"),
            parameters=[TAG_ID, *PAGE_PARAMETERS],
        ),
        "post": operation(
            'Tag a person: {"_links": {"osdi:person": {"href": "…/people/<id>"}}}',
            {
                "200": described_response("The person had the tag already", ref("Tagging")),
                "201": described_response("The new tagging", ref("Tagging")),
            },
            errors=("400", "401", "403", "404", "429"),
            parameters=[TAG_ID],
            body=ref("TaggingInput"),
        ),
    },
    "/tags/{tag_id}/taggings/{tagging_id}": {
        "get": operation(
            "One tagging",
            {"200": described_response("The tagging", ref("Tagging"))},
            errors=("401", "403", "404", "429"),
            parameters=[TAG_ID, TAGGING_ID],
        ),
        "delete": operation(
            "Take the tag off the person",
            {"200": described_response("Done", ref("Notice"))},
            errors=("401", "403", "404", "429"),
            parameters=[TAG_ID, TAGGING_ID],
        ),
    },
}
