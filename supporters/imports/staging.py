"""The staging table: every row of a file, cleaned, in a temporary table of the session.

On PostgreSQL the rows go in by COPY; on SQLite by executemany. Either way the table lives in
the worker's own database session: nothing another session sees, and nothing left behind by a
crash (the session's end drops it).
"""

from collections.abc import Iterable

from django.db import connection

from .cleaning import STAGING_COLUMNS


def staging_names(import_id: int) -> tuple[str, str]:
    """Return the names of an import's two temporary tables: its rows and its people."""
    return f"import_rows_{import_id}", f"import_people_{import_id}"


def staging_create(import_id: int) -> str:
    """Create (afresh) the temporary table of an import's rows; return its name."""
    rows_table, people_table = staging_names(import_id)
    staging_drop(import_id)
    with connection.cursor() as cursor:
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


def staging_drop(import_id: int) -> None:
    """Drop an import's temporary tables if they exist (a worker's connection is reused)."""
    with connection.cursor() as cursor:
        for table in staging_names(import_id):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
