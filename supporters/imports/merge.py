"""Merge an import's staged rows into the list: set-based SQL, in the transaction of a lane.

The same statements run on PostgreSQL and SQLite except where the dialects differ (the
per-person aggregate, and learning the ids of the supporters created); tests/supporters/imports
runs one file through both and compares. A lane (lanes.py) holds every row of its addresses,
so these statements merge its people whole, as they would the whole file.

Rules:
- an address on the erased list (SuppressedEmail) or held by an erased supporter is rejected,
  and no cell of its row is kept;
- rows of one address are one person; the first row's line is theirs, and each field takes
  the first non-empty value down the file; every later row counts as merged;
- a new person becomes a subscribed supporter; an existing one gets only the fields they have
  empty (FILLABLE_FIELDS) and keeps their status, whatever it is;
- the tags go on every person; a consent record (the import's wording and source) goes to
  every person who is subscribed: created now, or already subscribed. Nobody who left,
  bounced or complained is given a record of consent they did not renew, nor a new status.
"""

import time
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ..models import ConsentRecord, Supporter, SuppressedEmail, Tag
from ..services import FILLABLE_FIELDS
from .models import SupporterImportRejection

ERASED_REASON = "erased on request"
PERSON_FIELDS = ("first_name", "last_name", "country", "postcode", "language")
_SUBSCRIBED = Supporter.Status.SUBSCRIBED.value
_ERASED = Supporter.Status.ERASED.value


@dataclass(frozen=True)
class MergeCounts:
    rows: int
    created: int
    merged: int
    rejected: int
    duplicates_in_file: int
    existing: int
    existing_not_subscribed: int
    consent_records: int
    steps: dict[str, float]


def staging_merge(
    *,
    rows_table: str,
    people_table: str,
    created_table: str,
    import_id: int,
    tag_ids: list[int],
    source: str,
    consent_wording: str,
    consent_source: str,
    now: datetime,
) -> MergeCounts:
    """Merge the staged rows; call inside a transaction, so it all happens or none of it."""
    supporters = Supporter._meta.db_table
    postgres = connection.vendor == "postgresql"
    stamp = connection.ops.adapt_datetimefield_value(now)
    steps: dict[str, float] = {}
    with connection.cursor() as cursor:

        def run(sql: str, params=()):
            started = time.monotonic()
            cursor.execute(sql, params)
            # Seconds by kind of statement, for docs/performance.md: "INSERT INTO
            # supporters_consentrecord", "CREATE TEMPORARY TABLE", …
            step = " ".join(sql.split()[:3]).removesuffix(" (")
            steps[step] = round(steps.get(step, 0) + time.monotonic() - started, 2)
            return cursor

        if postgres:
            # The per-person aggregate sorts a million rows: in memory, not on disk.
            run("SET LOCAL work_mem = '256MB'")
            # The commit need not wait for the WAL of a million rows to reach the disk: a crash
            # before it does loses the whole import (status and all), which runs again.
            run("SET LOCAL synchronous_commit = off")
            run(f"ANALYZE {rows_table}")
        run(
            f"UPDATE {rows_table} SET reason = %s, email = NULL, raw = NULL "  # noqa: S608
            f"WHERE reason IS NULL AND email_hash IN "
            f"(SELECT email_hash FROM {SuppressedEmail._meta.db_table})",
            [ERASED_REASON],
        )
        if not postgres:
            # The per-person lookups below find an address's rows in line order by it.
            run(f"CREATE INDEX {rows_table}_email ON {rows_table} (email, line)")
        run(_people_sql(rows_table, people_table, supporters, postgres))
        if postgres:
            run(_people_fill_sql(rows_table, people_table))
        else:
            run(f"CREATE UNIQUE INDEX {people_table}_email ON {people_table} (email)")
        run(
            f"UPDATE {rows_table} SET reason = %s, email = NULL, raw = NULL "  # noqa: S608
            f"WHERE reason IS NULL AND email IN "
            f"(SELECT email FROM {people_table} WHERE status = %s)",
            [ERASED_REASON, _ERASED],
        )
        run(f"DELETE FROM {people_table} WHERE status = %s", [_ERASED])  # noqa: S608
        if postgres:
            run(f"ANALYZE {people_table}")
        _supporters_create(run, people_table, created_table, supporters, source, stamp, postgres)
        # From here on, people with a supporter_id are those who were there before; the
        # created table holds the ids of the new.
        _supporters_fill(run, people_table, supporters, stamp)
        # Tags and consent go in in supporter order: the foreign-key check of each row (at
        # commit) then reads the supporters' table and its index in order, not at random.
        if tag_ids:
            tags_table = Supporter.tags.through._meta.db_table
            placeholders = ", ".join(["%s"] * len(tag_ids))
            # Those created a moment ago have no tags: a plain insert, cheaper than the
            # speculative one ON CONFLICT makes of every row. Those there before may have.
            for people, on_conflict in (
                (created_table, ""),
                (
                    f"(SELECT supporter_id AS id FROM {people_table} "  # noqa: S608
                    f"WHERE supporter_id IS NOT NULL)",
                    " ON CONFLICT DO NOTHING",
                ),
            ):
                run(
                    f"INSERT INTO {tags_table} (supporter_id, tag_id) "  # noqa: S608
                    f"SELECT x.id, t.id FROM {people} x, {Tag._meta.db_table} t "
                    f"WHERE t.id IN ({placeholders}) ORDER BY x.id, t.id{on_conflict}",
                    tag_ids,
                )
        run(
            f"INSERT INTO {ConsentRecord._meta.db_table} "  # noqa: S608
            f"(supporter_id, wording, source_url, ip_truncated, created_at) "
            f"SELECT x.id, %s, %s, NULL, %s FROM (SELECT supporter_id AS id FROM {people_table} "
            f"WHERE status = %s UNION ALL SELECT id FROM {created_table}) x ORDER BY x.id",
            [consent_wording, consent_source, stamp, _SUBSCRIBED],
        )
        run(
            f"INSERT INTO {SupporterImportRejection._meta.db_table} "  # noqa: S608
            f"(supporter_import_id, line, reason, raw) "
            f"SELECT %s, line, reason, coalesce(raw, '') FROM {rows_table} "
            f"WHERE reason IS NOT NULL ORDER BY line",
            [import_id],
        )
        run(
            f"SELECT count(*), coalesce(sum(CASE WHEN reason IS NULL THEN 0 ELSE 1 END), 0) "  # noqa: S608
            f"FROM {rows_table}"
        )
        rows, rejected = cursor.fetchone()
        run(
            f"SELECT count(*), "  # noqa: S608
            f"coalesce(sum(CASE WHEN supporter_id IS NOT NULL AND status <> %s "
            f"THEN 1 ELSE 0 END), 0), "
            f"coalesce(sum(CASE WHEN status = %s THEN 1 ELSE 0 END), 0) FROM {people_table}",
            [_SUBSCRIBED, _SUBSCRIBED],
        )
        people, not_subscribed, subscribed_before = cursor.fetchone()
        run(f"SELECT count(*) FROM {created_table}")  # noqa: S608
        created = cursor.fetchone()[0]
    return MergeCounts(
        rows=rows,
        created=created,
        merged=rows - rejected - created,
        rejected=rejected,
        duplicates_in_file=rows - rejected - people,
        existing=people - created,
        existing_not_subscribed=not_subscribed,
        consent_records=subscribed_before + created,
        steps=steps,
    )


def _people_sql(rows_table: str, people_table: str, supporters: str, postgres: bool) -> str:
    """Return the statement that makes one row per address, joined to its supporter if any."""
    if postgres:
        # Each address's first row, in one sort; _people_fill_sql completes it from the rest.
        # Sorted bytewise ("C"): grouping needs no locale's order, and strcoll() costs more
        # than the rest of the sort. (Equal under any deterministic collation is equal bytes.)
        grouped = (
            f'SELECT DISTINCT ON (email COLLATE "C") email, line AS first_line, '  # noqa: S608
            f"{', '.join(PERSON_FIELDS)} FROM {rows_table} WHERE reason IS NULL "
            f'ORDER BY email COLLATE "C", line'
        )
    else:
        firsts = ", ".join(
            f"coalesce((SELECT x.{field} FROM {rows_table} x WHERE x.email = r.email "  # noqa: S608
            f"AND x.reason IS NULL AND x.{field} <> '' ORDER BY x.line LIMIT 1), '') AS {field}"
            for field in PERSON_FIELDS
        )
        grouped = (
            f"SELECT r.email, min(r.line) AS first_line, {firsts} FROM {rows_table} r "  # noqa: S608
            f"WHERE r.reason IS NULL GROUP BY r.email"
        )
    return (
        f"CREATE TEMPORARY TABLE {people_table} AS "  # noqa: S608
        f"SELECT g.*, s.id AS supporter_id, s.status AS status "
        f"FROM ({grouped}) g LEFT JOIN {supporters} s ON s.email = g.email"
    )


def _people_fill_sql(rows_table: str, people_table: str) -> str:
    """Return the PostgreSQL statement that fills a person's empty fields from their later rows.

    Only addresses on more than one row are aggregated: an ordered aggregate sorts each group
    on its own (PostgreSQL 15), which over every address is most of a large import's time.
    """
    firsts = ", ".join(
        f"coalesce((array_agg({field} ORDER BY line) FILTER (WHERE {field} <> ''))[1], '') "
        f"AS {field}"
        for field in PERSON_FIELDS
    )
    sets = ", ".join(
        f"{field} = CASE WHEN p.{field} = '' THEN d.{field} ELSE p.{field} END"
        for field in PERSON_FIELDS
    )
    empty = " OR ".join(f"p.{field} = ''" for field in PERSON_FIELDS)
    return (
        f"UPDATE {people_table} p SET {sets} FROM (SELECT email, {firsts} "  # noqa: S608
        f"FROM {rows_table} WHERE reason IS NULL AND email IN (SELECT email FROM {rows_table} "
        f"WHERE reason IS NULL GROUP BY email HAVING count(*) > 1) GROUP BY email) d "
        f"WHERE d.email = p.email AND ({empty})"
    )


def _supporters_create(run, people_table, created_table, supporters, source, stamp, postgres):
    """Insert the people with no supporter yet, subscribed; put their ids in `created_table`.

    The people table is not rewritten with the new ids: a million-row UPDATE of it cost more
    than the insert itself.
    """
    columns = (
        "email, first_name, last_name, country, postcode, language, status, source, "
        "created_at, updated_at, suppression_reason"
    )
    select = (
        f"SELECT email, first_name, last_name, country, postcode, "  # noqa: S608
        f"CASE WHEN language = '' THEN %s ELSE language END, %s, %s, %s, %s, '' "
        f"FROM {people_table} WHERE supporter_id IS NULL ORDER BY email"
    )
    # In email order: each insert into the unique email index lands beside the last one,
    # where file order would scatter them over an index of millions.
    params = [Supporter._meta.get_field("language").default, _SUBSCRIBED, source, stamp, stamp]
    run(f"CREATE TEMPORARY TABLE {created_table} (id bigint NOT NULL, email text NOT NULL)")
    if postgres:
        # Each new supporter's public uuid is random, as the column's default makes it, but the
        # batch's uuids are sorted and handed out in email order: the uuid index then takes its
        # inserts in order too, where a fresh uuid per row sent each to a random page of an
        # index of millions (most of the insert's page reads and full-page WAL images). Within
        # one import, uuid order follows email order; nothing else about them is told.
        new = f"{people_table} WHERE supporter_id IS NULL"
        select = (
            f"SELECT p.email, p.first_name, p.last_name, p.country, p.postcode, "  # noqa: S608
            f"CASE WHEN p.language = '' THEN %s ELSE p.language END, %s, %s, %s, %s, '', "
            f"u.uuid FROM (SELECT email, first_name, last_name, country, postcode, language, "
            f"row_number() OVER (ORDER BY email) AS n FROM {new}) p "
            f"JOIN (SELECT uuid, row_number() OVER (ORDER BY uuid) AS n FROM "
            f"(SELECT gen_random_uuid() AS uuid FROM generate_series(1, "
            f"(SELECT count(*) FROM {new}))) g) u ON u.n = p.n ORDER BY p.email"
        )
        run(
            f"WITH created AS (INSERT INTO {supporters} ({columns}, uuid) {select} "  # noqa: S608
            f"ON CONFLICT DO NOTHING RETURNING id, email) "
            f"INSERT INTO {created_table} SELECT id, email FROM created",
            params,
        )
        # A supporter who signed since the people table was made is no conflict: ON CONFLICT
        # skipped them, and they count as there before. Rare, so the join is paid only then.
        raced = run(
            f"SELECT (SELECT count(*) FROM {people_table} WHERE supporter_id IS NULL) "  # noqa: S608
            f"- (SELECT count(*) FROM {created_table})"
        ).fetchone()[0]
        if raced:
            run(
                f"UPDATE {people_table} p SET supporter_id = s.id, status = s.status "  # noqa: S608
                f"FROM {supporters} s WHERE p.supporter_id IS NULL AND s.email = p.email "
                f"AND s.id NOT IN (SELECT id FROM {created_table})"
            )
    else:
        # SQLite has one writer, this transaction: every address missing a moment ago is new.
        run(f"INSERT INTO {supporters} ({columns}) {select} ON CONFLICT DO NOTHING", params)
        run(
            f"INSERT INTO {created_table} SELECT s.id, s.email FROM {people_table} p "  # noqa: S608
            f"JOIN {supporters} s ON s.email = p.email WHERE p.supporter_id IS NULL"
        )


def _supporters_fill(run, people_table, supporters, stamp) -> None:
    """Fill the empty FILLABLE_FIELDS of existing supporters; touch nothing else of theirs."""
    sets = ", ".join(
        f"{field} = CASE WHEN {supporters}.{field} = '' THEN p.{field} "
        f"ELSE {supporters}.{field} END"
        for field in FILLABLE_FIELDS
    )
    wanted = " OR ".join(
        f"({supporters}.{field} = '' AND p.{field} <> '')" for field in FILLABLE_FIELDS
    )
    run(
        f"UPDATE {supporters} SET {sets}, updated_at = %s FROM {people_table} p "  # noqa: S608
        f"WHERE p.supporter_id = {supporters}.id AND ({wanted})",
        [stamp],
    )
