"""Reads of the API that span relations: people as the API may show them, taggings."""

import uuid

from api.hal import ApiError, not_found
from supporters.models import Supporter

Tagging = Supporter.tags.through

# The columns a person's representation reads: a page of people loads no more.
PERSON_COLUMNS = (
    "id",
    "uuid",
    "email",
    "first_name",
    "last_name",
    "country",
    "postcode",
    "language",
    "status",
    "created_at",
    "updated_at",
)


def people_listed():
    """Return the people the API lists: everyone but the erased, oldest first."""
    return (
        Supporter.objects.exclude(status=Supporter.Status.ERASED)
        .only(*PERSON_COLUMNS)
        .order_by("id")
    )


def person_by_public_id(person_id: str) -> Supporter:
    """Return the supporter with this public id; 404 if there is none, 410 if erased."""
    try:
        public_id = uuid.UUID(person_id)
    except ValueError:
        raise not_found("person") from None
    supporter = Supporter.objects.filter(uuid=public_id).only(*PERSON_COLUMNS).first()
    if supporter is None:
        raise not_found("person")
    if supporter.status == Supporter.Status.ERASED:
        raise ApiError(410, "this person was erased at their request")
    return supporter


def whole_number(text: str, what: str) -> int:
    """Return an id from a path; 404 when it is not one (no id can match)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise not_found(what)
    return int(text)
