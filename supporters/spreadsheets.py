"""Supporters' data as CSV a spreadsheet opens safely: formula-proof cells, a BOM, streaming.

Shared by every export of personal data (supporters here, signatures in campaigns/exports.py),
so they all escape formulas and stream the same way. It lives in `supporters`, the lowest
layer, because `campaigns` may import from here but `supporters` may not import `campaigns`.
"""

import csv
import datetime
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django_countries import countries

# Rows fetched per round trip; PostgreSQL reads them through a server-side cursor.
EXPORT_CHUNK_SIZE = 2000

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


def country_names() -> dict[str, str]:
    """Map each country code to its name in the active language.

    Built once per export: `countries.name()` goes through gettext on every call, which made
    it most of the time of a 100k-row export.
    """
    return {country.code: str(country.name) for country in countries}


def utc_iso(moment: datetime.datetime | None) -> str:
    """Return a moment as ISO 8601 in UTC to the second, or "" for none."""
    if moment is None:
        return ""
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


class _EchoBuffer:
    """A file-like object whose write() hands the line back, so csv.writer can feed a stream.

    The "Streaming large CSV files" pattern from the Django docs.
    """

    def write(self, value: str) -> str:
        return value


def csv_chunks(rows: Iterable[list[str]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """Yield a UTF-8 byte order mark, then the rows as CSV text, a few hundred lines at a time.

    Grouping lines keeps the server from making one socket write per row.
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


def csv_download(rows: Iterable[list[str]], *, filename: str) -> StreamingHttpResponse:
    """Return a CSV attachment streamed as `rows` yields, in bounded memory.

    `filename` must need no quoting ([-a-zA-Z0-9_.]): callers build it from slugs and dates.
    """
    response = StreamingHttpResponse(csv_chunks(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
