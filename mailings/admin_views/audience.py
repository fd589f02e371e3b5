"""The audience's size beside its fields: `audience.json` and the read-only "Recipients" field.

`<id>/audience.json` answers `{"count": N, "by_language": {"en": …, "ru": …}}` for a mailing's
saved audience; outside scripts read it, so the shape stays. Query parameters named like the
form's audience fields replace the saved condition they name (an empty one removes it), so
mailings/static/mailings/audience_count.js can count what the campaigner has chosen before
saving; the add form, which has no mailing yet, asks `audience.json` with parameters only.
"""

import dataclasses
import re
from urllib.parse import urlencode

from django.http import HttpRequest, JsonResponse, QueryDict
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET
from django_countries import countries

from mailings.models import Mailing
from mailings.selectors import AudienceConditions, AudienceCounts, audience_counts
from supporters.models import Language

# The form's field names, in the order the script sends them (see `conditions_query`).
TAG_PARAMETERS = {
    "audience_include_tags": "include_tag_ids",
    "audience_exclude_tags": "exclude_tag_ids",
}
PETITION_PARAMETERS = {
    "audience_signed_petition": "signed_petition_id",
    "audience_not_signed_petition": "not_signed_petition_id",
}
# The dormant opt-in is a checkbox: the script sends "on" when it is ticked, "" when not.
CHECKED_VALUES = {"on": True, "true": True, "1": True, "": False, "off": False, "false": False,
                  "0": False}  # fmt: skip
# What a database integer column holds: a larger id would fail in the query, not here.
MAX_ID = 2**63 - 1


class ConditionError(ValueError):
    """A query parameter that names no possible condition; the message says which and why."""


@require_GET
def audience_json_view(
    request: HttpRequest, *, model_admin, mailing_id: int | None = None
) -> JsonResponse:
    """Count the saved audience of a mailing, or of none, with the query's conditions applied."""
    if not model_admin.has_view_permission(request):
        return JsonResponse({"error": "You may not view mailings."}, status=403)
    conditions = AudienceConditions()
    if mailing_id is not None:
        mailing = Mailing.objects.filter(pk=mailing_id).first()
        if mailing is None:
            return JsonResponse({"error": f"There is no mailing {mailing_id}."}, status=404)
        conditions = AudienceConditions.of(mailing)
    try:
        conditions = conditions_from_query(request.GET, base=conditions)
    except ConditionError as error:
        return JsonResponse({"error": str(error)}, status=400)
    counts = audience_counts(conditions)
    return JsonResponse({"count": counts.count, "by_language": counts.by_language})


def conditions_from_query(query: QueryDict, *, base: AudienceConditions) -> AudienceConditions:
    """Return `base` with each condition the query names replaced by the query's value.

    Tags repeat their parameter, one id each. Raises ConditionError for a value that cannot
    be a condition (an id that is not a number, a language Rally has not, a country code that
    is not ISO 3166's); an id of nothing that exists is a condition nobody meets.
    """
    changes: dict[str, object] = {}
    for parameter, attribute in TAG_PARAMETERS.items():
        if parameter in query:
            values = [value.strip() for value in query.getlist(parameter)]
            changes[attribute] = frozenset(_id(parameter, value) for value in values if value)
    for parameter, attribute in PETITION_PARAMETERS.items():
        if parameter in query:
            value = query[parameter].strip()
            changes[attribute] = _id(parameter, value) if value else None
    if "audience_language" in query:
        language = query["audience_language"].strip()
        if language and language not in Language.values:
            raise ConditionError(
                f"audience_language: “{language}” is not a language of Rally's "
                f"({', '.join(Language.values)})."
            )
        changes["language"] = language
    if "audience_country" in query:
        country = query["audience_country"].strip().upper()
        if country and country not in countries:
            raise ConditionError(
                f"audience_country: “{country}” is not a two-letter ISO 3166 country code "
                "(e.g. GB for the United Kingdom)."
            )
        changes["country"] = country
    if "audience_segment" in query:
        value = query["audience_segment"].strip()
        changes["segment_id"] = _id("audience_segment", value) if value else None
    if "include_dormant" in query:
        value = query["include_dormant"].strip().lower()
        if value not in CHECKED_VALUES:
            raise ConditionError(f"include_dormant: “{value}” is neither on nor off.")
        changes["include_dormant"] = CHECKED_VALUES[value]
    if "purpose" in query:
        purpose = query["purpose"].strip()
        if purpose not in Mailing.Purpose.values:
            raise ConditionError(
                f"purpose: “{purpose}” is not a mailing's purpose "
                f"({', '.join(Mailing.Purpose.values)})."
            )
        changes["purpose"] = purpose
    return dataclasses.replace(base, **changes)


def _id(parameter: str, value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", value) or not 0 < int(value) <= MAX_ID:
        raise ConditionError(f"{parameter}: “{value}” is not an id.")
    return int(value)


def conditions_query(conditions: AudienceConditions) -> str:
    """Return the query string that sets exactly these conditions, as the script writes it.

    The script compares it with the form's own to count only when the form differs from what
    the page already shows: ids in ascending order, an empty parameter for no condition.
    """
    pairs: list[tuple[str, object]] = []
    for parameter, attribute in TAG_PARAMETERS.items():
        ids = sorted(getattr(conditions, attribute))
        pairs += [(parameter, tag_id) for tag_id in ids] or [(parameter, "")]
    for parameter, attribute in PETITION_PARAMETERS.items():
        pairs.append((parameter, getattr(conditions, attribute) or ""))
    pairs.append(("audience_language", conditions.language))
    pairs.append(("audience_country", conditions.country.strip().upper()))
    pairs.append(("audience_segment", conditions.segment_id or ""))
    pairs.append(("include_dormant", "on" if conditions.include_dormant else ""))
    pairs.append(("purpose", conditions.purpose))
    return urlencode(pairs)


def describe_counts(counts: AudienceCounts) -> str:
    """Say it as the form does: "1,204 recipients (en: 1,000, ru: 204)"."""
    noun = "recipient" if counts.count == 1 else "recipients"
    languages = ", ".join(f"{language}: {n:,}" for language, n in counts.by_language.items())
    return f"{counts.count:,} {noun} ({languages})"


def recipients_html(mailing: Mailing, *, site_name: str) -> str:
    """Render the "Recipients" field: the saved audience's count, which the script keeps live.

    The status role makes screen readers announce each new count; a page without JavaScript
    shows the count of what was saved.
    """
    if mailing.pk is None:
        url = reverse(f"{site_name}:mailings_mailing_audience_add")
        text, counted = "Counted as you choose the audience.", ""
    else:
        url = reverse(f"{site_name}:mailings_mailing_audience", args=[mailing.pk])
        conditions = AudienceConditions.of(mailing)
        text = describe_counts(audience_counts(conditions))
        counted = format_html(' data-counted-query="{}"', conditions_query(conditions))
    return format_html(
        '<div class="audience-count" data-url="{}"{}>'
        '<span class="audience-count-text" role="status" aria-live="polite" aria-atomic="true">'
        '{}</span> <span class="audience-count-busy" hidden>(counting…)</span></div>',
        url,
        counted,
        text,
    )
