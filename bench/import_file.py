"""The CSV file bench_import imports: its rows, and the counts an import of it must report.

Row i (0-based) is, by i's remainders, so that the mix is exact for any row count:
- i % 50 == 0: an invalid address (2%);
- i % 10 == 1 (but row 1): row i - 3 again, in upper case (10%): a duplicate in the file;
- i % 5 == 2: a synthetic supporter already present (20%), each a different one;
- otherwise a new address, bench-import-<i>@example.org.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from bench.synthetic import SYNTHETIC_PREFIX

NEW_PREFIX = "bench-import-"
HEADER = ["Email", "First name", "Last name", "Country", "Postcode"]


@dataclass(frozen=True)
class ExpectedCounts:
    rows: int
    created: int
    merged: int
    rejected: int


def import_file_write(path: Path, *, rows: int, supporters: int) -> ExpectedCounts:
    """Write the file of `rows` rows over `supporters` synthetic supporters; return its counts."""
    rejected = duplicates = existing = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for i in range(rows):
            if i % 50 == 0:
                rejected += 1
                writer.writerow([f"not-an-address-{i}", "Invalid", "Row", "DE", ""])
            elif i % 10 == 1 and i >= 3:
                duplicates += 1
                writer.writerow([_new_email(i - 3).upper(), "", "Again", "", ""])
            elif i % 5 == 2 and existing < supporters:
                existing += 1
                # Known supporters: no postcode, so their (complete) rows are left as they were.
                writer.writerow([f"{SYNTHETIC_PREFIX}{existing}@example.org", "Known", "", "", ""])
            else:
                writer.writerow([_new_email(i), "Ann", f"Import{i}", "GB", "N1 1AA"])
    created = rows - rejected - duplicates - existing
    return ExpectedCounts(
        rows=rows, created=created, merged=duplicates + existing, rejected=rejected
    )


def _new_email(i: int) -> str:
    return f"{NEW_PREFIX}{i}@example.org"
