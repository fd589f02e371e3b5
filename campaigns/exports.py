"""Petition signatures as files for delivery to the target: a CSV download and a printable list.

Both read the signatures in one `values_list(...).iterator()` query, whatever their number:
no model instances, no per-row queries. The CSV streams, so 100k+ signatures download in
bounded memory; the printable list holds only names, countries and dates.
"""

import datetime
from collections.abc import Iterator
from typing import NamedTuple

from django.http import StreamingHttpResponse
from django.utils import timezone

from supporters.audit import supporter_audit_record
from supporters.models import Supporter, SupporterAuditEntry
from supporters.spreadsheets import (
    EXPORT_CHUNK_SIZE,
    country_names,
    csv_download,
    csv_safe,
    utc_iso,
)

from .models import Petition, Signature

CSV_HEADER = (
    "First name", "Last name", "Email", "Country", "Postcode", "Signed at (UTC)",
    "Confirmed at (UTC)", "Source",
)  # fmt: skip


def _petition_signatures(petition: Petition, *, confirmed_only: bool):
    # An erased signer still counts towards the petition, but has no name or address to list.
    signatures = Signature.objects.filter(petition=petition).exclude(
        supporter__status=Supporter.Status.ERASED
    )
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
    names = country_names()
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
            csv_safe(names.get(country, "")),
            csv_safe(postcode),
            csv_safe(utc_iso(signed_at)),
            csv_safe(utc_iso(confirmed_at)),
            csv_safe(source),
        ]


def petition_signatures_csv_filename(petition: Petition) -> str:
    """Return e.g. "free-navalny-signatures-2025-03-01.csv" (today in UTC)."""
    return f"{petition.slug}-signatures-{timezone.now():%Y-%m-%d}.csv"


def petition_signatures_csv_response(petition: Petition, *, actor) -> StreamingHttpResponse:
    """Return a download of the petition's confirmed signatures, streamed as it is written.

    Used by the petition admin's export URL and its "Export signatures as CSV" action. The
    export is written to the list's audit log, with its size, before a row leaves.
    """
    supporter_audit_record(
        action=SupporterAuditEntry.Action.EXPORTED_SIGNATURES,
        actor=actor,
        row_count=_petition_signatures(petition, confirmed_only=True).count(),
        detail=f"CSV of petition {petition.slug}, confirmed signatures",
    )
    # The slug is a SlugField ([-a-zA-Z0-9_]), so it needs no quoting inside the header.
    return csv_download(
        petition_signatures_csv_rows(petition, confirmed_only=True),
        filename=petition_signatures_csv_filename(petition),
    )


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
    names = country_names()
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
            country=names.get(country, ""),
            signed_on=signed_at.astimezone(datetime.UTC).date().isoformat(),
        )
        for first_name, last_name, country, signed_at in rows
    ]
