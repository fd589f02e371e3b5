"""The supporters' CSV import, on any file: a clear error or correct records, never a crash.

Files are made by hypothesis from what real and hostile files hold: random bytes, several
encodings with and without a byte order mark, several delimiters, quotes, huge fields, line
breaks inside cells, formulas, control characters. Reading and cleaning run on every example;
a whole import (staging and merge, as the worker runs it) on fewer, as each is a real one.
"""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supporters.imports.cleaning import RowCleaner
from supporters.imports.mapping import mapping_check, mapping_guess
from supporters.imports.reading import ImportFileError, rows_read
from supporters.imports.services import (
    file_header_read,
    supporter_import_create,
    supporter_import_run,
)
from supporters.models import Supporter, SupporterImport

HEADERS = ["Email", "First name", "Last name", "Country", "Postcode", "Language", "Notes"]
cells = st.one_of(
    st.text(max_size=20),
    st.emails().map(str),
    st.sampled_from(
        [
            "=1+1",
            "+SUM(A1)",
            "-2",
            "@cmd",
            '=HYPERLINK("http://evil")',
            "\t=1",
            "GB",
            "ru",
            "Россия",
            "ann@example.org",
            "ANN@Example.org",
            " ",
            '"',
            "\r\n",
            "\x00",
            "\ufeff",
            "a" * 70_000,
        ]
    ),  # fmt: skip
)
rows = st.lists(st.lists(cells, min_size=0, max_size=9), max_size=8)
headers = st.one_of(
    st.just(HEADERS),
    st.lists(st.one_of(st.sampled_from(HEADERS), st.text(max_size=12)), max_size=8),
)
delimiters = st.sampled_from([",", ";", "\t", "|"])
encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1251", "latin-1"])


def quoted(cell: str, delimiter: str) -> str:
    if any(char in cell for char in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def csv_files(draw) -> bytes:
    """A CSV file as bytes: well made, or broken in the ways files are."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    delimiter = draw(delimiters)
    lines = [draw(headers), *draw(rows)]
    text = "\r\n".join(delimiter.join(quoted(cell, delimiter) for cell in line) for line in lines)
    if draw(st.booleans()):
        text = text.replace('"', "", 1)  # an unclosed quote
    encoding = draw(encodings)
    return text.encode(encoding, errors="replace")


def read_everything(data: bytes) -> int:
    """Read and clean a file as the import does; return the rows staged."""
    headers, _, file_format = file_header_read(io.BytesIO(data))
    mapping = mapping_guess(headers)
    mapping_check(headers, mapping)
    cleaner = RowCleaner(mapping)
    stream = io.BytesIO(data)
    read = rows_read(stream, file_format)
    next(read)
    return sum(1 for row in read if cleaner.stage(row))


@given(data=csv_files())
def test_any_file_is_read_and_cleaned_or_refused_with_a_clear_error(data):
    try:
        read_everything(data)
    except ImportFileError as error:
        assert str(error).strip()


@pytest.mark.django_db(transaction=True)
@settings(max_examples=12)
@given(data=csv_files())
def test_any_file_imports_correct_records_or_fails_with_a_clear_error(data):
    supporter_import = supporter_import_create(
        original_name="list.csv", tag_names=["fair"], consent_source="Book fair",
        consent_wording="Email me",
    )  # fmt: skip
    try:
        headers, _, _ = file_header_read(io.BytesIO(data))
        SupporterImport.objects.filter(pk=supporter_import.pk).update(
            status="queued", mapping=mapping_guess(headers)
        )
        done = supporter_import_run(import_id=supporter_import.pk, stream=io.BytesIO(data))
    except ImportFileError as error:
        assert str(error).strip()
        supporter_import.refresh_from_db()
        assert supporter_import.status in ("draft", "failed")
        return
    assert done.status == "done"
    assert done.created + done.merged + done.rejected <= done.rows
    for supporter in Supporter.objects.all():
        assert supporter.email == supporter.email.strip().lower() and "@" in supporter.email
        assert len(supporter.first_name) <= 100 and len(supporter.last_name) <= 100
        assert not any(ord(char) < 32 for char in supporter.first_name + supporter.last_name)
