"""Engagement writes: keep each supporter's Engagement row up to date as things happen.

supporters/engagement.py reads the rows (the tiers); this module writes them, set-based: a
batch of supporters costs one statement, never a scan. Three things move a row:

- **mailed**: the send queue recording a batch sent (mailings/sending/batches.py puts
  mailed_upsert_sql into the very statement that marks the deliveries sent);
- **opened** and **clicked**: the tracking pixel, a tracked link, an ESP's open or click event;
- **acted**: a signature (campaigns/signing: the PostgreSQL writer has the twin of
  engaged_upsert_sql in sign_batch.sql, the portable writer calls engagement_record_engaged).

A row is made the first time any of these happens, starting from the supporter's joining
(Supporter.created_at), which counts as engaging. Both PostgreSQL and SQLite speak
`INSERT … ON CONFLICT DO UPDATE`; they differ only in the name of the two-argument maximum.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import TextChoices

from .models import Engagement, Supporter

ENGAGEMENT_TABLE = Engagement._meta.db_table
SUPPORTER_TABLE = Supporter._meta.db_table
# Supporters per statement in engagement_record_engaged: well under SQLite's limit on
# parameters; a tracking or signing batch is smaller.
CHUNK_SUPPORTERS = 1000


class Engaged(TextChoices):
    """What a supporter did, by the column that records its last time."""

    OPENED = "last_opened_at", "opened"
    CLICKED = "last_clicked_at", "clicked"
    ACTED = "last_acted_at", "acted"


def _greatest() -> str:
    # PostgreSQL's GREATEST skips nulls; SQLite's many-argument max() is the same otherwise.
    return "GREATEST" if connection.vendor == "postgresql" else "MAX"


def _timestamp_parameter() -> str:
    # A bare parameter in a SELECT list has no type for PostgreSQL to infer from a column.
    return "%s::timestamptz" if connection.vendor == "postgresql" else "%s"


def mailed_upsert_sql(*, sent_supporters: str) -> str:
    """Return the statement that counts one mailing more for each supporter sent one.

    `sent_supporters` is a relation (a CTE's name, or a parenthesised subquery) with a
    `supporter_id` column, one row per delivery just marked sent; the statement takes one
    parameter, the time they were sent. Rows are written in supporter order, so that two
    batches at once lock the rows they share in the same order.
    """
    return (
        f"INSERT INTO {ENGAGEMENT_TABLE} "  # noqa: S608 -- table names from the models
        "(supporter_id, last_mailed_at, last_engaged_at, mailings_since_engaged) "
        f"SELECT supporter.id, {_timestamp_parameter()}, supporter.created_at, sent.mailings "
        "FROM (SELECT supporter_id, COUNT(*) AS mailings "
        f"FROM {sent_supporters} AS sent_row GROUP BY supporter_id) AS sent "
        f"JOIN {SUPPORTER_TABLE} AS supporter ON supporter.id = sent.supporter_id "
        "WHERE true ORDER BY supporter.id "
        "ON CONFLICT (supporter_id) DO UPDATE SET "
        "last_mailed_at = EXCLUDED.last_mailed_at, "
        f"mailings_since_engaged = {ENGAGEMENT_TABLE}.mailings_since_engaged "
        "+ EXCLUDED.mailings_since_engaged"
    )


def engaged_upsert_sql(*, engaged: Engaged, batch: str) -> str:
    """Return the statement that records an engagement for each row of `batch`.

    `batch` is a relation with `supporter_id` and `at` columns, one row per supporter. The
    column of `engaged` and last_engaged_at only move forward (an event that arrives late
    changes neither), and the count of mailings since engaging goes back to 0.
    """
    greatest = _greatest()
    column = engaged.value
    return (
        f"INSERT INTO {ENGAGEMENT_TABLE} "  # noqa: S608 -- table and column names from code
        f"(supporter_id, {column}, last_engaged_at, mailings_since_engaged) "
        f"SELECT supporter.id, batch.at, {greatest}(supporter.created_at, batch.at), 0 "
        f"FROM {batch} AS batch "
        f"JOIN {SUPPORTER_TABLE} AS supporter ON supporter.id = batch.supporter_id "
        "WHERE true ORDER BY supporter.id "
        "ON CONFLICT (supporter_id) DO UPDATE SET "
        f"{column} = {greatest}(COALESCE({ENGAGEMENT_TABLE}.{column}, EXCLUDED.{column}), "
        f"EXCLUDED.{column}), "
        f"last_engaged_at = {greatest}({ENGAGEMENT_TABLE}.last_engaged_at, "
        "EXCLUDED.last_engaged_at), "
        "mailings_since_engaged = 0"
    )


def engagement_record_engaged(*, engaged: Engaged, times: Iterable[tuple[int, datetime]]) -> None:
    """Record that supporters opened, clicked or acted, each at their own time, in a statement.

    `times` holds (supporter id, when); a supporter named twice keeps the later time. A
    supporter deleted meanwhile is passed over (the JOIN finds no row).
    """
    latest: dict[int, datetime] = {}
    for supporter_id, at in times:
        if supporter_id not in latest or at > latest[supporter_id]:
            latest[supporter_id] = at
    if not latest:
        return
    ids = sorted(latest)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK_SUPPORTERS):
            chunk = ids[start : start + CHUNK_SUPPORTERS]
            stored = [connection.ops.adapt_datetimefield_value(latest[pk]) for pk in chunk]
            if connection.vendor == "postgresql":
                batch = (
                    "(SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) "
                    "AS rows (supporter_id, at))"
                )
                params: list = [chunk, stored]
            else:
                values = ", ".join(["(%s, %s)"] * len(chunk))
                batch = f"(SELECT column1 AS supporter_id, column2 AS at FROM (VALUES {values}))"  # noqa: S608
                params = [value for row in zip(chunk, stored, strict=True) for value in row]
            cursor.execute(engaged_upsert_sql(engaged=engaged, batch=batch), params)
