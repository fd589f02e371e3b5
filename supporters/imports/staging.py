"""The staging table: every row of a file, cleaned, in a temporary table of the session.

On PostgreSQL the rows go in by COPY; on SQLite by executemany. Either way the table lives in
the database session of its lane (lanes.py), the current thread's: nothing another session
sees, and nothing left behind by a crash (the session's end drops it).
"""

import contextlib
from collections.abc import Iterable

from django.db import DatabaseError, connection

from .cleaning import STAGING_COLUMNS


def staging_names(import_id: int, lane: int) -> tuple[str, str, str]:
    """Return the names of a lane's temporary tables: its rows, people, and the created."""
    suffix = f"{import_id}_{lane}"
    return f"import_rows_{suffix}", f"import_people_{suffix}", f"import_created_{suffix}"


def staging_create(import_id: int, lane: int) -> str:
    """Create (afresh) the temporary table of a lane's rows; return its name."""
    rows_table = staging_names(import_id, lane)[0]
    staging_drop(import_id, lane)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Temporary tables live in the session's own buffers, 8 MB by default: a million
            # staged rows would go back and forth to disk. Settable only before the session's
            # first temporary table, hence a fresh connection per import (services.py).
            # A session that already used one keeps its buffers: slower, not wrong.
            with contextlib.suppress(DatabaseError):
                cursor.execute("SET temp_buffers = '256MB'")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {rows_table} (line integer NOT NULL, email text, "
            "email_hash text, first_name text NOT NULL, last_name text NOT NULL, "
            "country text NOT NULL, postcode text NOT NULL, language text NOT NULL, "
            "reason text, raw text)"
        )
    return rows_table


def staging_write(table: str, rows: Iterable[tuple]) -> None:
    """Append staged rows (tuples in STAGING_COLUMNS order) to the staging table."""
    columns = ", ".join(STAGING_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(STAGING_COLUMNS))
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608
                list(rows),
            )


def staging_drop(import_id: int, lane: int) -> None:
    """Drop a lane's temporary tables if they exist (a worker's connection is reused)."""
    with connection.cursor() as cursor:
        for table in staging_names(import_id, lane):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
