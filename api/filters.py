"""The OData filters Action Network accepts: `?filter=email_address eq 'ann@example.org'`,
`modified_date gt '2024-01-01'`, `modified_date lt '…'`, joined by `and`.

Anything else is refused with a message naming what was not understood, never ignored: a
filter silently dropped would hand a script the whole list instead of one person.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from api.hal import bad_request

# One condition: a field name, an operator, and a single-quoted value ('' is a quote in it).
CONDITION = re.compile(r"\s*([A-Za-z_]+)\s+([A-Za-z]+)\s+'((?:[^']|'')*)'")
AND = re.compile(r"\s+and\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: str | datetime


def parse_filter(text: str, allowed: dict[str, set[str]]) -> list[Condition]:
    """Parse a filter into conditions; `allowed` maps each field to the operators it takes.

    Dates (`*_date` fields) are parsed into aware datetimes; a bare date is its midnight UTC.
    """
    if len(text) > 1000:
        raise bad_request("the filter is too long")
    conditions = []
    position = 0
    while True:
        match = CONDITION.match(text, position)
        if not match:
            raise bad_request(
                f"filter not understood at {text[position : position + 40]!r}: write conditions "
                "like email_address eq 'ann@example.org' or modified_date gt '2024-01-31', "
                "joined by and"
            )
        field, operator, raw = match.group(1), match.group(2).lower(), match.group(3)
        if field not in allowed:
            raise bad_request(
                f"cannot filter on {field!r}: this collection filters on "
                f"{', '.join(sorted(allowed))}"
            )
        if operator not in allowed[field]:
            raise bad_request(
                f"{field} takes the operator{'s' if len(allowed[field]) > 1 else ''} "
                f"{', '.join(sorted(allowed[field]))}, not {operator!r}"
            )
        value = raw.replace("''", "'")
        conditions.append(
            Condition(field, operator, _date(field, value) if field.endswith("_date") else value)
        )
        position = match.end()
        if not text[position:].strip():
            return conditions
        joiner = AND.match(text, position)
        if not joiner:
            raise bad_request(
                f"filter not understood at {text[position : position + 40]!r}: join conditions "
                "with and, each followed by another condition"
            )
        position = joiner.end()


def _date(field: str, value: str) -> datetime:
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is not None:
                moment = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - made aware below
    except ValueError:
        moment = None
    if moment is None:
        raise bad_request(f"{field} needs a date like '2024-01-31' or '2024-01-31T12:00:00Z'")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def filter_text(request) -> str | None:
    """Return the request's `filter` parameter, or None when it has none."""
    text = request.GET.get("filter")
    if text is None:
        return None
    if not text.strip():
        raise bad_request("the filter is empty")
    if "\x00" in text:
        raise bad_request("the filter holds a NUL character")
    return text


# The collections whose only filter is their resources' modified date.
MODIFIED_DATE_FILTERS = {"modified_date": {"gt", "lt"}}


def modified_date_filtered(request, queryset, *, column: str):
    """Apply the request's `modified_date gt|lt` filter to `column`; refuse any other filter.

    Shared by every collection that filters on its modified date alone: each names the column
    that holds its resources' modified_date.
    """
    text = filter_text(request)
    if text is not None:
        for condition in parse_filter(text, MODIFIED_DATE_FILTERS):
            queryset = queryset.filter(**{f"{column}__{condition.operator}": condition.value})
    return queryset
