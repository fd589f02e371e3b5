"""The OData filter parser: what Action Network's clients send is read; the rest is refused."""

from datetime import UTC, datetime

import pytest

from api.filters import Condition, parse_filter
from api.hal import ApiError

PEOPLE = {"email_address": {"eq"}, "modified_date": {"gt", "lt"}}


def test_conditions_joined_by_and_are_read_with_quotes_and_dates():
    assert parse_filter("email_address eq 'o''brien@example.org'", PEOPLE) == [
        Condition("email_address", "eq", "o'brien@example.org")
    ]
    assert parse_filter(
        "  modified_date gt '2024-01-31'  AND modified_date lt '2024-02-01T10:30:00Z' ", PEOPLE
    ) == [
        Condition("modified_date", "gt", datetime(2024, 1, 31, tzinfo=UTC)),
        Condition("modified_date", "lt", datetime(2024, 2, 1, 10, 30, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("email_address eq ann@example.org", "not understood"),
        ("email_address eq 'ann@example.org", "not understood"),
        ("given_name eq 'Ann'", "given_name"),
        ("email_address ne 'ann@example.org'", "'ne'"),
        ("email_address eq 'a' or email_address eq 'b'", "and"),
        ("email_address eq 'a' and", "and"),
        ("email_address eq 'a'and modified_date gt '2024-01-01'", "and"),
        ("modified_date gt 'yesterday'", "date"),
        ("modified_date gt '2024-02-30'", "date"),
        ("x" * 1001, "too long"),
    ],
)
def test_anything_else_is_refused_with_a_400_naming_the_problem(text, named):
    with pytest.raises(ApiError) as refused:
        parse_filter(text, PEOPLE)
    assert refused.value.status == 400
    assert named in refused.value.message
