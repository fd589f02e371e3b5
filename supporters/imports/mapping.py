"""Which column fills which supporter field: guessed from the header, adjustable by hand."""

import re

from .reading import ImportFileError

# The supporter fields an import can fill, in the order the admin's mapping form lists them.
FIELDS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "country": "Country",
    "postcode": "Postcode",
    "language": "Language",
}
IGNORE = ""
# Headers seen in real exports (Mailchimp, Action Network, Excel, Russian spreadsheets),
# compared after _header_key: lower case, punctuation as spaces, ё as е.
HEADER_ALIASES = {
    "email": (
        "email", "e mail", "email address", "e mail address", "emailaddress", "mail",
        "email адрес", "эл почта", "эл адрес", "электронная почта", "почта", "емейл", "имейл",
        "адрес электронной почты", "e mail адрес",
    ),
    "first_name": (
        "first name", "firstname", "first", "given name", "forename", "name first", "имя",
    ),
    "last_name": (
        "last name", "lastname", "last", "surname", "family name", "name last", "фамилия",
    ),
    "country": ("country", "country code", "countrycode", "страна"),
    "postcode": (
        "postcode", "post code", "postal code", "postalcode", "zip", "zip code", "zipcode",
        "индекс", "почтовый индекс",
    ),
    "language": ("language", "lang", "locale", "preferred language", "язык"),
}  # fmt: skip
_FIELD_BY_HEADER = {alias: field for field, aliases in HEADER_ALIASES.items() for alias in aliases}
_PUNCTUATION = re.compile(r"[\s_\-.:/()*]+")


def mapping_guess(headers: list[str]) -> list[str]:
    """Return the field for each column ("" to ignore it): the first column that names a field."""
    mapping, taken = [], set()
    for header in headers:
        field = _FIELD_BY_HEADER.get(_header_key(header), IGNORE)
        if field in taken:
            field = IGNORE
        taken.add(field)
        mapping.append(field)
    return mapping


def mapping_adjust(headers: list[str], mapping: list[str], overrides: list[str]) -> list[str]:
    """Apply `column=field` overrides (the command's --map) to a mapping; field may be empty.

    A column is named by its header (case and spacing ignored) or by its number, from 1.
    """
    mapping = list(mapping)
    keys = [_header_key(header) for header in headers]
    for override in overrides:
        column, separator, field = override.rpartition("=")
        field = field.strip()
        if not separator or not column.strip():
            raise ImportFileError(f"--map {override!r}: write it as column=field.")
        if field not in FIELDS and field not in (IGNORE, "ignore", "-"):
            raise ImportFileError(
                f"--map {override!r}: unknown field {field!r}; fields are {', '.join(FIELDS)}."
            )
        field = field if field in FIELDS else IGNORE
        key = _header_key(column)
        if key in keys:
            index = keys.index(key)
        elif column.strip().isdigit() and 1 <= int(column) <= len(headers):
            index = int(column) - 1
        else:
            raise ImportFileError(
                f"--map {override!r}: no column {column.strip()!r}; "
                f"the header has {', '.join(repr(header) for header in headers)}."
            )
        if field:
            mapping = [IGNORE if taken == field else taken for taken in mapping]
        mapping[index] = field
    return mapping


def mapping_check(headers: list[str], mapping: list[str]) -> None:
    """Raise ImportFileError unless the mapping fits the header and one column is the email."""
    if len(mapping) != len(headers):
        raise ImportFileError(
            f"The mapping has {len(mapping)} columns, the file's header {len(headers)}."
        )
    unknown = sorted({field for field in mapping if field and field not in FIELDS})
    if unknown:
        raise ImportFileError(f"Unknown fields in the mapping: {', '.join(unknown)}.")
    repeated = sorted({field for field in mapping if field and mapping.count(field) > 1})
    if repeated:
        raise ImportFileError(f"More than one column is mapped to {', '.join(repeated)}.")
    if "email" not in mapping:
        raise ImportFileError(
            "No column holds the email address: name it Email (or E-mail, Почта…) or map one "
            f"to email. The header has {', '.join(repr(header) for header in headers)}."
        )


def _header_key(header: str) -> str:
    return _PUNCTUATION.sub(" ", header.replace("\ufeff", "").lower().replace("ё", "е")).strip()
