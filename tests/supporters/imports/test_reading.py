"""Bytes to rows: encodings, delimiters, line ends, limits; headers to fields; addresses."""

import io

import pytest
from email_validator import EmailNotValidError, validate_email

from supporters.imports.cleaning import RowCleaner, country_code
from supporters.imports.mapping import mapping_adjust, mapping_check, mapping_guess
from supporters.imports.reading import ImportFileError, RawRow, file_format_detect, rows_read
from supporters.suppression import email_hash

RUSSIAN = "Эл. почта;Имя;Фамилия\nanna@example.org;Анна;Каренина\n"
GERMAN = "Email,First name,Last name\njurgen@example.org,Jürgen,Müller\n"


def read(data: bytes, encoding: str = "") -> tuple[list[list[str]], str, str]:
    stream = io.BytesIO(data)
    file_format = file_format_detect(stream, encoding=encoding)
    rows = [row.cells or [row.problem] for row in rows_read(stream, file_format)]
    return rows, file_format.note, file_format.delimiter


@pytest.mark.parametrize(
    ("data", "note"),
    [
        (RUSSIAN.encode("utf-8"), "UTF-8"),
        (b"\xef\xbb\xbf" + RUSSIAN.encode("utf-8"), "UTF-8 (with BOM)"),
        (RUSSIAN.encode("utf-16"), "UTF-16 (with BOM)"),
        (RUSSIAN.encode("cp1251"), "Windows-1251 (Cyrillic), guessed: the file is not UTF-8"),
    ],
)
def test_a_russian_file_reads_the_same_in_every_encoding_and_says_which(data, note):
    rows, used, delimiter = read(data)
    assert rows == [["Эл. почта", "Имя", "Фамилия"], ["anna@example.org", "Анна", "Каренина"]]
    assert (used, delimiter) == (note, ";")


def test_a_western_code_page_is_not_mistaken_for_cyrillic():
    rows, used, _ = read(GERMAN.encode("cp1252"))
    assert rows[1] == ["jurgen@example.org", "Jürgen", "Müller"]
    assert used.startswith("Windows-1252")
    # A byte cp1252 leaves undefined: latin-1, which reads anything, and says so.
    _, used, _ = read(GERMAN.encode("latin-1") + b"\x81\n")
    assert used.startswith("ISO-8859-1")


def test_a_file_not_in_the_encoding_chosen_is_refused_with_where():
    with pytest.raises(ImportFileError, match=r"not valid UTF-8 \(byte 0\)"):
        read(RUSSIAN.encode("cp1251"), encoding="utf-8")


def test_tabs_crlf_quotes_and_blank_lines():
    data = b'email\tname\r\n\r\n"a@example.org"\t"Smith, \r\nJr"\r\nb@example.org\tB\r\n'
    rows, _, delimiter = read(data)
    assert delimiter == "\t"
    assert rows == [["email", "name"], ["a@example.org", "Smith, \r\nJr"], ["b@example.org", "B"]]


def test_one_column_file_is_read_with_commas():
    rows, _, delimiter = read(b"email\na@example.org\n")
    assert (rows, delimiter) == ([["email"], ["a@example.org"]], ",")


def test_a_10_mb_line_and_a_huge_cell_are_rejected_alone_and_reading_goes_on():
    data = (
        b"email,name\na@example.org,A\n" + b"b" * 10_000_000 + b",x\n"
        b'c@example.org,"' + b"c" * 200_000 + b'"\nd@example.org,D\n'
    )
    stream = io.BytesIO(data)
    rows = list(rows_read(stream, file_format_detect(stream)))
    assert [(row.line, row.cells is None) for row in rows] == [
        (1, False), (2, False), (3, True), (4, True), (5, False),
    ]  # fmt: skip
    assert "longer than" in rows[2].problem and "field larger" in rows[3].problem


def test_empty_file_is_refused():
    with pytest.raises(ImportFileError, match="empty"):
        read(b"\n\n")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Email Address", "First Name", "Surname", "Zip", "Country"],
         ["email", "first_name", "last_name", "postcode", "country"]),
        (["e-mail", "Given name", "Family name", "Postal code", "Language"],
         ["email", "first_name", "last_name", "postcode", "language"]),
        (["Электронная почта", "Имя", "Фамилия", "Индекс", "Страна", "Язык"],
         ["email", "first_name", "last_name", "postcode", "country", "language"]),
        (["Почта", "Notes", "E-mail"], ["email", "", ""]),
    ],
)  # fmt: skip
def test_common_headers_map_to_their_fields(headers, expected):
    assert mapping_guess(headers) == expected


def test_a_mapping_is_adjusted_by_header_or_number_and_must_have_an_email():
    headers = ["Contact", "Name", "Email"]
    mapping = mapping_adjust(headers, mapping_guess(headers), ["contact=email", "2=first_name"])
    assert mapping == ["email", "first_name", ""]
    with pytest.raises(ImportFileError, match="no column 'Phone'"):
        mapping_adjust(headers, mapping, ["Phone=email"])
    with pytest.raises(ImportFileError, match="unknown field 'phone'"):
        mapping_adjust(headers, mapping, ["Contact=phone"])
    with pytest.raises(ImportFileError, match="No column holds the email address"):
        mapping_check(["Name", "Phone"], mapping_guess(["Name", "Phone"]))


ADDRESSES = [
    "Ann@Example.ORG", " ann.o'neil+list@example.co.uk ", "x@localhost", "a@b", "a..b@example.org",
    ".a@example.org", "a@example..org", "a@-example.org", "user@xn--80ak6aa92e.com",
    "анна@пример.рф", "Ann <ann@example.org>", "a@example.org.", "a" * 65 + "@example.org",
    "a@" + "b" * 64 + ".org", "a@example.invalid", "a@123.45", "\"quoted\"@example.org",
    "a@[127.0.0.1]", "a@example", "a@exam_ple.org", "=HYPERLINK(\"x\")@example.org",
]  # fmt: skip


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_fast_path_agrees_with_email_validator(address, settings):
    try:
        expected = validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    email, problem = RowCleaner(["email"]).email_normalise(address)
    assert email == expected
    assert bool(problem) == (expected is None)


@pytest.mark.parametrize("key", ["short key", "k" * 64, "a key longer than a block " * 4])
def test_the_staged_hash_is_the_erased_list_hash_whatever_the_key(key, settings):
    """The cleaner's HMAC by hand is supporters.suppression.email_hash, byte for byte."""
    settings.RALLY_SUPPRESSION_HASH_KEY = key
    cleaner = RowCleaner(["email"])
    for address in ("ann@example.org", "анна@пример.рф", "a.b+c@xn--80ak6aa92e.com"):
        staged = cleaner.stage(RawRow(2, [address]))
        assert staged[2] == email_hash(staged[1])


@pytest.mark.parametrize(
    ("cell", "code"),
    [("UK", "GB"), ("gb", "GB"), ("USA", "US"), ("Germany", "DE"), ("Россия", "RU"),
     ("РФ", "RU"), ("Atlantis", "")],
)  # fmt: skip
def test_a_country_cell_becomes_its_iso_code_by_code_name_or_common_alias(cell, code):
    assert country_code(cell) == code
