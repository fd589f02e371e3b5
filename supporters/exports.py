"""Supporters as a CSV file: exactly the rows the admin changelist shows, streamed.

The admin passes the changelist's own queryset (its filters, search and date drill-down), so
what downloads is what the campaigner was looking at. Rows are read with one
`values_list(...).iterator()` query and their tags with one query per chunk of rows: no model
instances, no per-row queries, bounded memory however many supporters there are.
"""

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from .audit import supporter_audit_record
from .models import Supporter, SupporterAuditEntry
from .spreadsheets import EXPORT_CHUNK_SIZE, country_names, csv_download, csv_safe, utc_iso

SUPPORTER_CSV_HEADER = (
    "Email", "First name", "Last name", "Country", "Postcode", "Language", "Status", "Source",
    "Tags", "Created at (UTC)", "Unsubscribed at (UTC)",
)  # fmt: skip

# Between tag names in the Tags cell; a name holding it is still one cell, quoted by csv.
TAG_SEPARATOR = "; "

_COLUMNS = (
    "pk", "email", "first_name", "last_name", "country", "postcode", "language", "status",
    "source", "created_at", "unsubscribed_at",
)  # fmt: skip


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _tag_names(supporter_ids: list[int]) -> dict[int, str]:
    """Return each supporter's tag names, sorted and joined, for one chunk of supporters."""
    names: dict[int, list[str]] = {}
    links = (
        Supporter.tags.through.objects.filter(supporter_id__in=supporter_ids)
        .order_by("tag__name")
        .values_list("supporter_id", "tag__name")
    )
    for supporter_id, name in links:
        names.setdefault(supporter_id, []).append(name)
    return {supporter_id: TAG_SEPARATOR.join(tags) for supporter_id, tags in names.items()}


def supporter_csv_rows(supporters: QuerySet[Supporter]) -> Iterator[list[str]]:
    """Yield the header row, then one formula-safe row per supporter, in the queryset's order."""
    yield list(SUPPORTER_CSV_HEADER)
    countries = country_names()
    statuses = dict(Supporter.Status.choices)
    rows = supporters.values_list(*_COLUMNS).iterator(chunk_size=EXPORT_CHUNK_SIZE)
    for chunk in _chunks(rows, EXPORT_CHUNK_SIZE):
        tags = _tag_names([row[0] for row in chunk])
        for (
            pk, email, first_name, last_name, country, postcode, language, status, source,
            created_at, unsubscribed_at,
        ) in chunk:  # fmt: skip
            yield [
                csv_safe(email),
                csv_safe(first_name),
                csv_safe(last_name),
                csv_safe(countries.get(country, "")),
                csv_safe(postcode),
                csv_safe(language),
                csv_safe(statuses.get(status, status)),
                csv_safe(source),
                csv_safe(tags.get(pk, "")),
                csv_safe(utc_iso(created_at)),
                csv_safe(utc_iso(unsubscribed_at)),
            ]


def describe_filters(params: Mapping[str, list[str]], *, search: str) -> str:
    """Describe a changelist's filters for the audit log, without any personal data.

    The search text is left out (it is often a name or an address), and so is any filter value
    with an "@" in it; the audit log outlives every erasure and must name nobody.
    """
    parts = []
    for name, values in sorted(params.items()):
        shown = ["…" if "@" in value else value for value in values]
        parts.append(f"{name}={','.join(shown)}")
    if search:
        parts.append("a search (its text is not recorded)")
    return "; ".join(parts) or "no filter"


def supporters_csv_response(
    *, supporters: QuerySet[Supporter], row_count: int, filters: str, actor
) -> StreamingHttpResponse:
    """Return `supporters` as a streamed CSV download, written to the audit log first.

    `row_count` is the changelist's count of the same queryset, recorded with the export; the
    file may differ by whoever signs or leaves while it streams.
    """
    supporter_audit_record(
        action=SupporterAuditEntry.Action.EXPORTED_SUPPORTERS,
        actor=actor,
        row_count=row_count,
        detail=f"CSV of supporters: {filters}",
    )
    return csv_download(
        supporter_csv_rows(supporters), filename=f"supporters-{timezone.now():%Y-%m-%d}.csv"
    )
