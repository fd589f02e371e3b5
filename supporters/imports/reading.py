"""Turn an uploaded file's bytes into rows: encoding, delimiter and limits, as a stream.

Spreadsheets arrive as UTF-8 (with or without a BOM), UTF-16 (Excel's "Unicode text"), or in a
Windows code page: cp1251 from Russian Excel, cp1252 from Western European. The guess is a
rule, not a statistical detector, so the same file always gives the same answer and the report
can say which rule chose it:

1. a BOM names the encoding;
2. otherwise the whole file is checked as strict UTF-8 (a fast pass over the bytes: a single
   bad byte in the last row would otherwise surface after half the rows were read);
3. otherwise, if its high bytes come mostly in runs of three or more (whole words of letters,
   as Cyrillic text is in cp1251; accented Latin letters stand alone among ASCII ones) and it
   decodes as cp1251, cp1251;
4. otherwise cp1252 if it decodes, else latin-1 (which decodes anything).

A campaigner who knows better chooses the encoding; a file that is not valid in the chosen
one fails before anything is written, with the byte offset.
"""

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

# A line longer than this is rejected whole and skipped, so one runaway line (an unclosed
# quote, a pasted blob) cannot make the worker hold it in memory. csv's own field limit
# (131,072 characters, left at its default: it is process-wide) rejects a huge cell.
LINE_LIMIT = 1_000_000
SNIFF_BYTES = 65_536
SCAN_CHUNK = 1 << 20
# Enough of a file to tell cp1251 from cp1252 by its runs of high bytes.
CODEPAGE_SAMPLE = 4 << 20
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-16": "UTF-16 (with BOM)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1252": "Windows-1252 (Western European)",
    "latin-1": "ISO-8859-1 (Latin-1)",
}
DELIMITERS = (",", ";", "\t", "|")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")


class ImportFileError(Exception):
    """A file that cannot be imported at all; the message says why. Nothing is written."""


@dataclass(frozen=True)
class FileFormat:
    encoding: str  # a Python codec name
    delimiter: str
    note: str  # how the encoding was chosen, for the report
    # Whether some line may be over LINE_LIMIT: then lines are read one bounded piece at a
    # time, which is slower than csv reading the file directly.
    long_lines: bool = True


class RawRow(NamedTuple):
    """A row as read (a named tuple: a million of them are made for a large file)."""

    line: int  # the physical line the row starts on, 1-based, the header being line 1 or more
    cells: list[str] | None  # None: the row could not be read at all (see `problem`)
    problem: str = ""


def file_format_detect(stream: BinaryIO, *, encoding: str = "") -> FileFormat:
    """Return the file's encoding (the one asked for, or the guess) and its delimiter."""
    if encoding:
        if encoding not in ENCODINGS:
            raise ImportFileError(
                f"Unknown encoding {encoding!r}: use one of {', '.join(ENCODINGS)}."
            )
        _check_decodes(stream, encoding)
        codec, note = encoding, f"{ENCODINGS[encoding]}, as chosen"
        if encoding == "utf-8":
            codec = "utf-8-sig"  # a BOM is not part of the first header
    else:
        codec, note = _encoding_guess(stream)
    stream.seek(0)
    sample = stream.read(SNIFF_BYTES)
    stream.seek(0)
    text = sample.decode(codec, errors="ignore")
    if not text.strip():
        raise ImportFileError("The file is empty.")
    long_lines = codec.startswith("utf-16") or _longest_line(stream) >= LINE_LIMIT
    return FileFormat(
        encoding=codec, delimiter=_delimiter_guess(text), note=note, long_lines=long_lines
    )


def rows_read(stream: BinaryIO, file_format: FileFormat) -> Iterator[RawRow]:
    """Yield every row of the file with its line number, the header included; skip blank lines.

    Never holds more than one line in memory. A line over LINE_LIMIT characters or a cell over
    csv's field limit gives a RawRow without cells, and reading goes on after it.
    """
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=file_format.encoding, newline="")
    overlong: set[int] = set()
    lines = _lines_bounded(text, overlong) if file_format.long_lines else text
    reader = csv.reader(lines, delimiter=file_format.delimiter)
    line_done = 0
    try:
        while True:
            start = line_done + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                line_done = reader.line_num
                yield RawRow(start, None, f"unreadable row: {error}")
                continue
            line_done = reader.line_num
            if start in overlong:
                overlong.discard(start)
                yield RawRow(start, None, f"line longer than {LINE_LIMIT:,} characters")
            elif cells and any(cell.strip() for cell in cells):
                yield RawRow(start, cells)
    except UnicodeError as error:
        raise ImportFileError(
            f"The file is not valid {file_format.encoding} near line {line_done + 1} "
            f"({error}): choose its encoding."
        ) from error
    finally:
        text.detach()  # the caller owns the stream and closes it


def _lines_bounded(text: io.TextIOWrapper, overlong: set[int]) -> Iterator[str]:
    """Yield the lines of `text`; one over LINE_LIMIT becomes an empty one, noted in `overlong`."""
    number = 0
    while line := text.readline(LINE_LIMIT):
        number += 1
        if len(line) >= LINE_LIMIT and not line.endswith(("\n", "\r")):
            while (rest := text.readline(LINE_LIMIT)) and not rest.endswith(("\n", "\r")):
                pass
            overlong.add(number)
            yield "\n"
        else:
            yield line


def _longest_line(stream: BinaryIO) -> int:
    """Return the length in bytes of the file's longest line (ended by LF; CR alone is none)."""
    stream.seek(0)
    longest = carried = 0
    while chunk := stream.read(SCAN_CHUNK):
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            carried += len(chunk)
        else:
            longest = max(longest, carried + len(pieces[0]), *map(len, pieces[1:-1]))
            carried = len(pieces[-1])
        longest = max(longest, carried)
    stream.seek(0)
    return longest


def _encoding_guess(stream: BinaryIO) -> tuple[str, str]:
    stream.seek(0)
    head = stream.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "UTF-8 (with BOM)"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        _check_decodes(stream, "utf-16")
        return "utf-16", "UTF-16 (with BOM)"
    if _decodes(stream, "utf-8"):
        return "utf-8-sig", "UTF-8"
    stream.seek(0)
    sample = stream.read(CODEPAGE_SAMPLE)
    in_runs = high = 0
    for match in _HIGH_RUN.finditer(sample):
        length = match.end() - match.start()
        high += length
        if length >= 3:
            in_runs += length
    if in_runs * 2 >= high and _decodes(stream, "cp1251"):
        return "cp1251", "Windows-1251 (Cyrillic), guessed: the file is not UTF-8"
    if _decodes(stream, "cp1252"):
        return "cp1252", "Windows-1252 (Western European), guessed: the file is not UTF-8"
    return "latin-1", "ISO-8859-1 (Latin-1), guessed: the file is not UTF-8"


def _decodes(stream: BinaryIO, encoding: str) -> bool:
    try:
        _check_decodes(stream, encoding)
    except ImportFileError:
        return False
    return True


def _check_decodes(stream: BinaryIO, encoding: str) -> None:
    """Decode the whole file in chunks; raise ImportFileError at the first invalid byte."""
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    try:
        while chunk := stream.read(SCAN_CHUNK):
            decoder.decode(chunk)
            offset += len(chunk)
        decoder.decode(b"", final=True)
    except UnicodeError as error:  # UTF-16 without a BOM raises the base class, with no offset
        where = offset + getattr(error, "start", 0)
        raise ImportFileError(
            f"The file is not valid {ENCODINGS.get(encoding, encoding)} "
            f"(byte {where:,}): choose its encoding."
        ) from error
    finally:
        stream.seek(0)


def _delimiter_guess(text: str) -> str:
    """Return the delimiter that splits the header line into the most fields (comma on a tie)."""
    first_line = next(iter(io.StringIO(text, newline="")), "")
    best, best_fields = ",", 1
    for delimiter in DELIMITERS:
        fields = len(next(csv.reader([first_line], delimiter=delimiter), []))
        if fields > best_fields:
            best, best_fields = delimiter, fields
    return best
