"""Turn one row's cells into the values staged for the merge, or into a rejection with a reason.

A staged row is a tuple in STAGING_COLUMNS order. Every row is staged, the rejected ones too
(with `reason` and the raw cells, but no email), so the merge writes rejections in the same
transaction as the supporters.
"""

import hashlib
import json
import re
from functools import lru_cache
from operator import itemgetter

from django.conf import settings
from django_countries import countries
from email_validator import EmailNotValidError, validate_email

from .mapping import FIELDS
from .reading import RawRow

STAGING_COLUMNS = (
    "line", "email", "email_hash", "first_name", "last_name", "country", "postcode",
    "language", "reason", "raw",
)  # fmt: skip
# Widths of the supporter columns the import fills (supporters.models.Supporter).
NAME_LENGTH = 100
POSTCODE_LENGTH = 20
# The raw cells kept for the report: enough to find and fix the row, not a 10 MB cell.
RAW_CELL_LENGTH = 200
RAW_CELLS = 50
LANGUAGES = {
    "en": "en", "eng": "en", "english": "en", "английский": "en",
    "ru": "ru", "rus": "ru", "russian": "ru", "русский": "ru", "русский язык": "ru",
}  # fmt: skip
# A local part email-validator accepts as it is (a dot-atom of ASCII atext): for these only the
# domain needs the library, and a list has few domains, so each is validated once. The library
# costs tens of microseconds an address, most of a million-row import's time.
_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_CACHE_SIZE = 50_000
_SHA256_BLOCK = 64


class RowCleaner:
    """Clean the rows of one file, given the field of each column."""

    def __init__(self, mapping: list[str]):
        self.columns = len(mapping)
        # One getter for the six fields; an unmapped field reads the empty cell each row gets
        # appended at index `columns`.
        self._fields = itemgetter(
            *(mapping.index(field) if field in mapping else self.columns for field in FIELDS)
        )
        # email_hash() of supporters/suppression.py, HMAC-SHA256 by its definition (RFC 2104):
        # the inner and outer hashes take the key's pads once and are copied for each row.
        # The hmac module's own copy() is Python, three times the cost of these C calls.
        key = settings.RALLY_SUPPRESSION_HASH_KEY.encode()
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))
        self._domains: dict[str, str | None] = {}

    def stage(self, row: RawRow) -> tuple:
        """Return the staging tuple for a row: its values, or its reason for rejection."""
        if row.cells is None:
            return (row.line, None, None, "", "", "", "", "", row.problem, "")
        cells = row.cells
        columns = self.columns
        if len(cells) != columns:
            if len(cells) > columns and any(cell.strip() for cell in cells[columns:]):
                return self._reject(
                    row, f"{len(cells)} fields where the header has {columns}: a stray delimiter?"
                )
            # A short row: the missing cells are empty.
            cells = [*cells[:columns], *[""] * (columns - len(cells))]
        cells.append("")
        email, first_name, last_name, country, postcode, language = self._fields(cells)
        email, problem = self.email_normalise(email)
        if email is None:
            del cells[-1]
            return self._reject(row, problem)
        inner = self._inner.copy()
        inner.update(email.encode())
        digest = self._outer.copy()
        digest.update(inner.digest())
        first_name, last_name, postcode = first_name.strip(), last_name.strip(), postcode.strip()
        return (
            row.line,
            email,
            digest.hexdigest(),
            first_name[:NAME_LENGTH],
            last_name[:NAME_LENGTH],
            country_code(country.strip()) if country else "",
            postcode if len(postcode) <= POSTCODE_LENGTH else "",
            LANGUAGES.get(language.strip().lower(), "") if language else "",
            None,
            None,
        )

    def email_normalise(self, value: str) -> tuple[str | None, str]:
        """Return the address as Supporter stores it, or None and why it is not an address."""
        value = value.strip()
        if not value:
            return None, "no email address"
        local, at, domain = value.rpartition("@")
        if at and len(local) <= 64 and domain.isascii() and _SIMPLE_LOCAL.fullmatch(local):
            domain_key = domain.lower()
            if domain_key not in self._domains:
                if len(self._domains) >= _DOMAIN_CACHE_SIZE:
                    self._domains.clear()
                self._domains[domain_key] = _domain_normalise(domain_key)
            normalised_domain = self._domains[domain_key]
            if normalised_domain is not None:
                email = f"{local}@{normalised_domain}".lower()
                if len(email) <= 254:
                    return email, ""
        try:
            return validate_email(value, check_deliverability=False).normalized.lower(), ""
        except EmailNotValidError as error:
            return None, f"invalid email: {error}"

    @staticmethod
    def _reject(row: RawRow, reason: str) -> tuple:
        raw = json.dumps(
            [cell[:RAW_CELL_LENGTH] for cell in row.cells[:RAW_CELLS]], ensure_ascii=False
        )
        return (row.line, None, None, "", "", "", "", "", reason[:200], raw)


# What spreadsheets write for a country that is neither its ISO code nor its name in
# django-countries: "UK" above all (ISO's is GB), and the usual short forms.
COUNTRY_ALIASES = {
    "uk": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "usa": "US", "u.s.a.": "US", "u.s.": "US",
    "america": "US", "рф": "RU", "великобритания": "GB", "англия": "GB", "сша": "US",
}  # fmt: skip


@lru_cache(maxsize=4096)
def country_code(value: str) -> str:
    """Return the ISO code for a country code, name (English or Russian) or common alias.

    "" if unknown.
    """
    if not value:
        return ""
    alias = COUNTRY_ALIASES.get(value.strip().lower())
    if alias:
        return alias
    if len(value) == 2 and value.upper() in countries:
        return value.upper()
    return countries.by_name(value) or countries.by_name(value, language="ru") or ""


def _domain_normalise(domain: str) -> str | None:
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None
