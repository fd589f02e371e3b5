"""Petition signatures as files for delivery to the target: a CSV download and a printable list.

Both read the signatures in one `values_list(...).iterator()` query, whatever their number:
no model instances, no per-row queries. The CSV streams, so 100k+ signatures download in
bounded memory; the printable list holds only names, countries and dates.
"""

import csv
import datetime
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from django.http import StreamingHttpResponse
from django.utils import timezone
from django_countries import countries

from .models import Petition, Signature

# Rows fetched per round trip; PostgreSQL reads them through a server-side cursor.
EXPORT_CHUNK_SIZE = 2000

CSV_HEADER = (
    "First name", "Last name", "Email", "Country", "Postcode", "Signed at (UTC)",
    "Confirmed at (UTC)", "Source",
)  # fmt: skip

# A cell starting with one of these is read as a formula by Excel, LibreOffice and Google
# Sheets (OWASP "CSV Injection"); a signer can type any of them into a name field.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# Excel reads a CSV as the local ANSI code page unless it starts with a byte order mark, which
# turns Cyrillic names into mojibake.
UTF8_BOM = "\ufeff"


def csv_safe(value: Any) -> str:
    """Return `value` as text a spreadsheet shows as text, never runs as a formula.

    Follows OWASP: a leading quote makes the cell literal text. Only the first character
    matters, so "Smith-Jones" and "a@b.org" pass unchanged. None becomes an empty cell.
    """
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def _country_names() -> dict[str, str]:
    """Map each country code to its name in the active language.

    Built once per export: `countries.name()` goes through gettext on every call, which made
    it most of the time of a 100k-row export.
    """
    return {country.code: str(country.name) for country in countries}


def _utc_iso(moment: datetime.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def _petition_signatures(petition: Petition, *, confirmed_only: bool):
    signatures = Signature.objects.filter(petition=petition)
    if confirmed_only:
        signatures = signatures.filter(confirmed_at__isnull=False)
    # Signing order, so the numbered printable list and the CSV agree with each other.
    return signatures.order_by("created_at", "pk")


def petition_signatures_csv_rows(
    petition: Petition, *, confirmed_only: bool = True
) -> Iterator[list[str]]:
    """Yield the header row, then one formula-safe row per signature in signing order.

    Unconfirmed (double opt-in pending) signatures are left out unless `confirmed_only` is
    False: they have not counted as signing yet.
    """
    yield list(CSV_HEADER)
    country_names = _country_names()
    rows = (
        _petition_signatures(petition, confirmed_only=confirmed_only)
        .values_list(
            "supporter__first_name",
            "supporter__last_name",
            "supporter__email",
            "supporter__country",
            "supporter__postcode",
            "created_at",
            "confirmed_at",
            "source",
        )
        .iterator(chunk_size=EXPORT_CHUNK_SIZE)
    )
    for first_name, last_name, email, country, postcode, signed_at, confirmed_at, source in rows:
        yield [
            csv_safe(first_name),
            csv_safe(last_name),
            csv_safe(email),
            csv_safe(country_names.get(country, "")),
            csv_safe(postcode),
            csv_safe(_utc_iso(signed_at)),
            csv_safe(_utc_iso(confirmed_at)),
            csv_safe(source),
        ]


class _EchoBuffer:
    """A file-like object whose write() hands the line back, so csv.writer can feed a stream.

    The "Streaming large CSV files" pattern from the Django docs.
    """

    def write(self, value: str) -> str:
        return value


def csv_chunks(rows: Iterable[list[str]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """Yield a UTF-8 byte order mark, then the rows as CSV text, a few hundred lines at a time.

    Grouping lines keeps the server from making one socket write per signature.
    """
    writer = csv.writer(_EchoBuffer())
    chunk = [UTF8_BOM]
    for row in rows:
        chunk.append(writer.writerow(row))
        if len(chunk) >= rows_per_chunk:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def petition_signatures_csv_filename(petition: Petition) -> str:
    """Return e.g. "free-navalny-signatures-2025-03-01.csv" (today in UTC)."""
    return f"{petition.slug}-signatures-{timezone.now():%Y-%m-%d}.csv"


def petition_signatures_csv_response(petition: Petition) -> StreamingHttpResponse:
    """Return a download of the petition's confirmed signatures, streamed as it is written.

    Used by the petition admin's export URL and its "Export signatures as CSV" action.
    """
    response = StreamingHttpResponse(
        csv_chunks(petition_signatures_csv_rows(petition, confirmed_only=True)),
        content_type="text/csv; charset=utf-8",
    )
    # The slug is a SlugField ([-a-zA-Z0-9_]), so it needs no quoting inside the header.
    filename = petition_signatures_csv_filename(petition)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class PrintableSigner(NamedTuple):
    name: str
    country: str
    signed_on: str  # YYYY-MM-DD, UTC


def petition_printable_signers(petition: Petition) -> list[PrintableSigner]:
    """Return the confirmed signers in signing order: names, countries, dates; no emails.

    The printable list is handed to the petition's target, so it carries nothing that lets
    them contact or identify a signer beyond what a paper petition would. Names, countries and
    dates are formatted here rather than by template filters, which were slower on every row
    of a large petition (docs/performance.md, "Fakes, exports and pages").
    """
    country_names = _country_names()
    rows = (
        _petition_signatures(petition, confirmed_only=True)
        .values_list(
            "supporter__first_name", "supporter__last_name", "supporter__country", "created_at"
        )
        .iterator(chunk_size=EXPORT_CHUNK_SIZE)
    )
    return [
        PrintableSigner(
            name=f"{first_name} {last_name}".strip(),
            country=country_names.get(country, ""),
            signed_on=signed_at.astimezone(datetime.UTC).date().isoformat(),
        )
        for first_name, last_name, country, signed_at in rows
    ]
