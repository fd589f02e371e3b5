"""Reads about imports: the progress the admin polls, the rejected rows' report."""

import csv
import json
from collections.abc import Iterator

from supporters.spreadsheets import csv_safe

from .models import SupporterImport

REPORT_CHUNK = 2_000


def supporter_import_progress(supporter_import: SupporterImport) -> dict:
    """Return what the progress page shows, as JSON-ready values."""
    total = supporter_import.bytes_total
    finished = supporter_import.finished_at is not None
    if supporter_import.status == SupporterImport.Status.DONE and finished:
        percent = 100
    elif supporter_import.status in (SupporterImport.Status.MERGING, SupporterImport.Status.DONE):
        percent = 99  # the lanes commit together: there is no halfway to show
    else:
        percent = min(98, int(supporter_import.bytes_done * 100 / total)) if total else 0
    return {
        "status": supporter_import.status,
        "status_label": supporter_import.get_status_display(),
        # Set last, once the worker has cleaned up (the upload deleted): then it is over.
        "finished": finished,
        "percent": percent,
        "bytes_done": supporter_import.bytes_done,
        "bytes_total": total,
        "rows_done": supporter_import.rows_done,
        "rows": supporter_import.rows,
        "created": supporter_import.created,
        "merged": supporter_import.merged,
        "rejected": supporter_import.rejected,
        "seconds": supporter_import.summary.get("seconds"),
        "summary": supporter_import.summary,
        "error": supporter_import.error,
    }


def supporter_import_report_lines(supporter_import: SupporterImport) -> Iterator[str]:
    """Yield the rejected rows' report as CSV lines: line, reason, then the row's cells.

    Read in chunks from the database, so a report of a million rows is never in memory; each
    cell that a spreadsheet would run as a formula is escaped with a leading quote.
    """
    buffer = _LineBuffer()
    writer = csv.writer(buffer)
    writer.writerow(["line", "reason", *supporter_import.headers])
    yield buffer.take()
    rejections = supporter_import.rejections.order_by("line").values_list("line", "reason", "raw")
    for line, reason, raw in rejections.iterator(chunk_size=REPORT_CHUNK):
        cells = json.loads(raw) if raw else []
        writer.writerow([line, reason, *(csv_safe(cell) for cell in cells)])
        yield buffer.take()


class _LineBuffer:
    def __init__(self):
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text
