"""Read a person from a request body, in Action Network's fields, into what Rally keeps.

Action Network's clients often send back a whole person they fetched, so the fields it has
that Rally does not keep (phone numbers, street addresses, custom fields, the read-only
identifiers and dates) are accepted and set aside; a field in neither dialect is refused.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django_countries import countries

from api.hal import bad_request, refuse_unknown_fields, refuse_wrong_kinds
from supporters.models import Language, Supporter

PERSON_FIELDS = frozenset(
    {
        "identifiers",
        "created_date",
        "modified_date",
        "given_name",
        "family_name",
        "email_addresses",
        "phone_numbers",
        "postal_addresses",
        "languages_spoken",
        "custom_fields",
        "_links",
        "_embedded",
    }
)
EMAIL_ADDRESS_FIELDS = frozenset({"address", "primary", "status", "address_type"})
POSTAL_ADDRESS_FIELDS = frozenset(
    {
        "primary",
        "address_type",
        "address_lines",
        "locality",
        "region",
        "postal_code",
        "country",
        "language",
        "location",
        "status",
    }
)
# The kinds of the fields set aside, checked all the same: a script sending a wrong kind has a
# bug worth hearing about.
PERSON_KINDS = {
    "email_addresses": "objects",
    "postal_addresses": "objects",
    "languages_spoken": "strings",
    "identifiers": "strings",
    "created_date": "string",
    "modified_date": "string",
    "phone_numbers": "objects",
    "custom_fields": "object",
    "_links": "object",
    "_embedded": "object",
}
EMAIL_ADDRESS_KINDS = {"primary": "boolean", "address_type": "string"}
POSTAL_ADDRESS_KINDS = {
    "primary": "boolean",
    "address_type": "string",
    "address_lines": "strings",
    "locality": "string",
    "region": "string",
    "language": "string",
    "location": "object",
    "status": "string",
}
# The statuses a request may ask for, in Action Network's words.
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
REQUESTABLE_STATUSES = (SUBSCRIBED, UNSUBSCRIBED)

_validate_email = EmailValidator()
# The codes a country may be given as (and the OpenAPI description lists), or "" for none.
COUNTRY_CODES = frozenset(code for code, _ in countries)


@dataclass(frozen=True)
class PersonInput:
    """What a request says of a person; None where it says nothing."""

    email: str | None = None
    email_status: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    country: str | None = None
    postal_code: str | None = None
    language: str | None = None


def person_input(data, *, email_required: bool) -> PersonInput:
    """Read a person object; refuse, with a 400 naming the field, anything Rally cannot keep."""
    if not isinstance(data, dict):
        raise bad_request("person must be a JSON object")
    refuse_unknown_fields(data, PERSON_FIELDS, where="person")
    refuse_wrong_kinds(data, PERSON_KINDS, where="person")
    email, email_status = _email_address(data.get("email_addresses"), required=email_required)
    country, postal_code = _postal_address(data.get("postal_addresses"))
    return PersonInput(
        email=email,
        email_status=email_status,
        given_name=_name(data, "given_name"),
        family_name=_name(data, "family_name"),
        country=country,
        postal_code=postal_code,
        language=_language(data.get("languages_spoken")),
    )


def _text(value, field: str, *, max_length: int) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a string")
    if len(value) > max_length:
        raise bad_request(f"{field} is longer than {max_length} characters")
    value = value.strip()
    if "\x00" in value:
        raise bad_request(f"{field} holds a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise bad_request(f"{field} is not valid Unicode text") from None
    return value


def _name(data: dict, field: str) -> str | None:
    if data.get(field) is None:
        return None
    max_length = Supporter._meta.get_field(
        "first_name" if field == "given_name" else "last_name"
    ).max_length
    return _text(data[field], field, max_length=max_length)


def _email_address(addresses, *, required: bool) -> tuple[str | None, str | None]:
    if addresses is None:
        if required:
            raise bad_request("a person needs an email address: person.email_addresses[0].address")
        return None, None
    if not isinstance(addresses, list) or not all(isinstance(a, dict) for a in addresses):
        raise bad_request("email_addresses must be a list of objects")
    for address in addresses:
        refuse_unknown_fields(address, EMAIL_ADDRESS_FIELDS, where="email_addresses")
        refuse_wrong_kinds(address, EMAIL_ADDRESS_KINDS, where="email_addresses")
    # Rally keeps one address per person: the primary one, or else the first.
    chosen = next((a for a in addresses if a.get("primary") is True), None)
    if chosen is None and addresses:
        chosen = addresses[0]
    if chosen is None or not chosen.get("address"):
        if required:
            raise bad_request("a person needs an email address: person.email_addresses[0].address")
        chosen = chosen or {}
        email = None
    else:
        email = _text(chosen["address"], "email_addresses.address", max_length=254).lower()
        try:
            _validate_email(email)
        except ValidationError:
            raise bad_request(f"{email[:100]!r} is not an email address") from None
    status = chosen.get("status")
    if "status" in chosen and status not in REQUESTABLE_STATUSES:
        raise bad_request(
            f"email_addresses.status may be {' or '.join(REQUESTABLE_STATUSES)}, not "
            f"{str(status)[:40]!r}"
        )
    return email, status


def _postal_address(addresses) -> tuple[str | None, str | None]:
    if addresses is None:
        return None, None
    if not isinstance(addresses, list) or not all(isinstance(a, dict) for a in addresses):
        raise bad_request("postal_addresses must be a list of objects")
    for address in addresses:
        refuse_unknown_fields(address, POSTAL_ADDRESS_FIELDS, where="postal_addresses")
        refuse_wrong_kinds(address, POSTAL_ADDRESS_KINDS, where="postal_addresses")
    chosen = next((a for a in addresses if a.get("primary") is True), None)
    if chosen is None and addresses:
        chosen = addresses[0]
    if chosen is None:
        return None, None
    country = postal_code = None
    if "country" in chosen:
        country = _text(chosen["country"], "postal_addresses.country", max_length=2)
        if country and country not in COUNTRY_CODES:
            raise bad_request(
                f"{country!r} is not a country code (ISO 3166-1 alpha-2 in capitals, e.g. GB)"
            )
    if "postal_code" in chosen:
        postal_code = _text(
            chosen["postal_code"],
            "postal_addresses.postal_code",
            max_length=Supporter._meta.get_field("postcode").max_length,
        )
    return country, postal_code


def _language(languages) -> str | None:
    if languages is None:
        return None
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        raise bad_request("languages_spoken must be a list of language codes")
    # The first language Rally writes in; others are someone's, but not Rally's to use.
    for code in languages:
        code = code.strip().lower()[:8]
        if code in Language.values:
            return code
    return None


def tag_names(value, *, field: str = "add_tags") -> list[str]:
    """Read a list of tag names, as add_tags gives them."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{field} must be a list of tag names")
    if len(value) > 100:
        raise bad_request(f"{field} holds more than 100 tags")
    max_length = 100
    names = [_text(name, field, max_length=max_length) for name in value]
    if any(not name for name in names):
        raise bad_request(f"{field} holds an empty tag name")
    return list(dict.fromkeys(names))
