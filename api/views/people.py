"""People: the collection, one person, the person signup helper (POST), a person's taggings."""

from api.filters import filter_text, parse_filter
from api.hal import (
    bad_request,
    collection_page,
    endpoint,
    hal_response,
    refuse_unknown_fields,
)
from api.openapi import (
    DATE_TIME,
    PAGE_PARAMETERS,
    described_response,
    error_response,
    filter_parameter,
    operation,
    page_of,
    path_parameter,
    ref,
)
from api.people_input import COUNTRY_CODES, person_input, tag_names
from api.representations.people import person_representation, tagging_representation
from api.selectors import Tagging, people_listed, person_by_public_id
from api.services.people import person_signup, person_update

PEOPLE_FILTERS = {"email_address": {"eq"}, "modified_date": {"gt", "lt"}}
SIGNUP_FIELDS = frozenset({"person", "add_tags"})


def people_list(request):
    people = people_listed()
    text = filter_text(request)
    if text is not None:
        for condition in parse_filter(text, PEOPLE_FILTERS):
            if condition.field == "email_address":
                people = people.filter(email=condition.value.strip().lower())
            else:
                people = people.filter(**{f"updated_at__{condition.operator}": condition.value})
    return hal_response(
        collection_page(
            request,
            people,
            collection="people",
            path="people",
            represent=person_representation,
            base_url=request.base_url,
        )
    )


def people_signup(request):
    """The person signup helper: add or match a person by email (api.services.people)."""
    body = request.json
    refuse_unknown_fields(body, SIGNUP_FIELDS)
    if "person" not in body:
        raise bad_request('the body needs a person: {"person": {"email_addresses": [...]}}')
    person = person_input(body["person"], email_required=True)
    add_tags = tag_names(body.get("add_tags"))
    supporter, created = person_signup(
        person=person, add_tags=add_tags, token_name=request.caller.name
    )
    request.written.append(f"person:{supporter.uuid}")
    return hal_response(
        person_representation(supporter, base_url=request.base_url),
        status=201 if created else 200,
    )


def person_detail(request, person_id: str):
    supporter = person_by_public_id(person_id)
    return hal_response(person_representation(supporter, base_url=request.base_url))


def person_put(request, person_id: str):
    supporter = person_by_public_id(person_id)
    person = person_input(request.json, email_required=False)
    supporter = person_update(supporter=supporter, person=person, token_name=request.caller.name)
    request.written.append(f"person:{supporter.uuid}")
    return hal_response(person_representation(supporter, base_url=request.base_url))


def person_taggings(request, person_id: str):
    supporter = person_by_public_id(person_id)
    taggings = (
        Tagging.objects.filter(supporter_id=supporter.pk).order_by("id").values_list("id", "tag_id")
    )

    def represent(row, *, base_url):
        return tagging_representation(
            tagging_id=row[0], tag_id=row[1], supporter_uuid=supporter.uuid, base_url=base_url
        )

    return hal_response(
        collection_page(
            request,
            taggings,
            collection="taggings",
            path=f"people/{supporter.uuid}/taggings",
            represent=represent,
            base_url=request.base_url,
        )
    )


people_view = endpoint(
    {"GET": people_list, "POST": people_signup}, helper_methods=frozenset({"POST"})
)
person_view = endpoint({"GET": person_detail, "PUT": person_put})
person_taggings_view = endpoint({"GET": person_taggings})


EMAIL_STATUSES = ["subscribed", "unsubscribed", "bouncing", "spam complaint"]
OPENAPI_SCHEMAS = {
    "Person": {
        "type": "object",
        "required": [
            "identifiers",
            "created_date",
            "modified_date",
            "given_name",
            "family_name",
            "languages_spoken",
            "email_addresses",
            "postal_addresses",
            "custom_fields",
            "_links",
        ],
        "properties": {
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "created_date": DATE_TIME,
            "modified_date": DATE_TIME,
            "given_name": {"type": "string"},
            "family_name": {"type": "string"},
            "languages_spoken": {"type": "array", "items": {"type": "string"}},
            "email_addresses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["address", "primary", "status"],
                    "properties": {
                        "address": {"type": "string"},
                        "primary": {"type": "boolean"},
                        "status": {"type": "string", "enum": EMAIL_STATUSES},
                    },
                },
            },
            "postal_addresses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "primary": {"type": "boolean"},
                        "postal_code": {"type": "string"},
                        "country": {"type": "string"},
                    },
                },
            },
            "custom_fields": {"type": "object"},
            "_links": {"$ref": "#/components/schemas/Links"},
        },
    },
    # What a request may say of a person. Action Network's fields Rally does not keep (phone
    # numbers, street addresses, custom fields) are accepted and set aside.
    "PersonInput": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "given_name": {"type": "string", "maxLength": 100, "nullable": True},
            "family_name": {"type": "string", "maxLength": 100, "nullable": True},
            "email_addresses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "address": {"type": "string", "format": "email", "maxLength": 254},
                        "primary": {"type": "boolean"},
                        "status": {"type": "string", "enum": ["subscribed", "unsubscribed"]},
                        "address_type": {"type": "string"},
                    },
                },
            },
            "postal_addresses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "primary": {"type": "boolean"},
                        "postal_code": {"type": "string", "maxLength": 20},
                        "country": {"type": "string", "enum": ["", *sorted(COUNTRY_CODES)]},
                        "address_type": {"type": "string"},
                        "address_lines": {"type": "array", "items": {"type": "string"}},
                        "locality": {"type": "string"},
                        "region": {"type": "string"},
                        "language": {"type": "string"},
                        "location": {"type": "object"},
                        "status": {"type": "string"},
                    },
                },
            },
            "languages_spoken": {"type": "array", "items": {"type": "string"}},
            "phone_numbers": {"type": "array", "items": {"type": "object"}},
            "custom_fields": {"type": "object"},
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "created_date": {"type": "string"},
            "modified_date": {"type": "string"},
            "_links": {"type": "object"},
            "_embedded": {"type": "object"},
        },
    },
    "PersonSignup": {
        "type": "object",
        "additionalProperties": False,
        "required": ["person"],
        "properties": {
            "person": {
                "allOf": [{"$ref": "#/components/schemas/PersonInput"}],
                "required": ["email_addresses"],
            },
            "add_tags": {
                "type": "array",
                "nullable": True,
                "maxItems": 100,
                "items": {"type": "string", "minLength": 1, "maxLength": 100},
            },
        },
    },
    "Tagging": {
        "type": "object",
        "required": ["identifiers", "item_type", "_links"],
        "properties": {
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "item_type": {"type": "string", "enum": ["osdi:person"]},
            "_links": {"$ref": "#/components/schemas/Links"},
        },
    },
}

PERSON_ID = path_parameter("person_id", "The person's id: the uuid of rally:<uuid>")
OPENAPI_PATHS = {
    "/people": {
        "get": operation(
            "List people (never the erased), oldest first",
            {"200": described_response("A page of people", page_of("people", "Person"))},
            errors=("400", "401", "403", "404", "429"),
            parameters=[
                *PAGE_PARAMETERS,
                filter_parameter(
                    "email_address eq 'ann@example.org' and modified_date gt '2024-01-31'"
                ),
            ],
        ),
        "post": operation(
            "The person signup helper: add a person, or match one by email and fill blanks",
            {
                "200": described_response("A known person, matched by email", ref("Person")),
                "201": described_response("A new person", ref("Person")),
                "410": error_response("The address belongs to a person erased at their request"),
            },
            errors=("400", "401", "403", "429"),
            body=ref("PersonSignup"),
        ),
    },
    "/people/{person_id}": {
        "get": operation(
            "One person",
            {
                "200": described_response("The person", ref("Person")),
                "410": error_response("The person was erased at their request"),
            },
            errors=("401", "403", "404", "429"),
            parameters=[PERSON_ID],
        ),
        "put": operation(
            "Change a person's fields; a status of subscribed or unsubscribed changes theirs",
            {
                "200": described_response("The person as changed", ref("Person")),
                "409": error_response("Another person has this email address"),
                "410": error_response("The person, or the new address's owner, was erased"),
            },
            errors=("400", "401", "403", "404", "429"),
            parameters=[PERSON_ID],
            body=ref("PersonInput"),
        ),
    },
    "/people/{person_id}/taggings": {
        "get": operation(
            "The taggings of one person",
            {
                "200": described_response("A page of taggings", page_of("taggings", "Tagging")),
                "410": error_response("The person was erased at their request"),
            },
            errors=("400", "401", "403", "404", "429"),
            parameters=[PERSON_ID, *PAGE_PARAMETERS],
        ),
    },
}
