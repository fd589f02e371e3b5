"""The synthetic supporters that bench_sign and bench_audience run over, made once and kept.

They are bench-supporter-<n>@example.org, n = 1…N: subscribed, English, in Germany. Creating
2M takes a while, so every benchmark keeps them for the next run and removes only what it made
itself.
"""

import time
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

from supporters.models import Supporter

# bench_sign's signers are bench-<run>-<thread>-<n>@example.org, run being 8 hex digits: the
# two never overlap.
SYNTHETIC_PREFIX = "bench-supporter-"
SYNTHETIC_CHUNK = 250_000


def synthetic_supporters_ensure(target: int, *, log: Callable[[str], object]) -> int:
    """Create the synthetic supporters 1…target that are missing; return how many there are.

    Set-based, in chunks that each commit on their own, so an interrupted run keeps what it
    made. `log` receives progress lines (a command's stderr).
    """
    existing = _synthetic_count()
    if existing >= target:
        log(f"{existing:,} synthetic supporters present.")
        return existing
    log(f"Creating synthetic supporters: {existing:,} of {target:,} present…")
    table = Supporter._meta.db_table
    started = time.monotonic()
    for first in range(1, target + 1, SYNTHETIC_CHUNK):
        last = min(first + SYNTHETIC_CHUNK - 1, target)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # ON CONFLICT: numbers already present (an earlier, interrupted run) are kept.
                cursor.execute(
                    f"""
                    INSERT INTO {table} (email, first_name, last_name, country, postcode,
                        language, status, source, created_at, updated_at)
                    SELECT %s || n || '@example.org', 'Bench', 'Supporter' || n, 'DE', '',
                        'en', 'subscribed', 'bench', now(), now()
                    FROM generate_series(%s::bigint, %s::bigint) AS n
                    ON CONFLICT DO NOTHING
                    """,  # noqa: S608 -- the table name comes from the model
                    [SYNTHETIC_PREFIX, first, last],
                )
            else:
                # SQLite has no generate_series without an extension: a recursive CTE counts.
                now = connection.ops.adapt_datetimefield_value(timezone.now())
                cursor.execute(
                    f"""
                    WITH RECURSIVE series(n) AS (
                        SELECT %s UNION ALL SELECT n + 1 FROM series WHERE n < %s
                    )
                    INSERT OR IGNORE INTO {table} (email, first_name, last_name, country,
                        postcode, language, status, source, created_at, updated_at)
                    SELECT %s || n || '@example.org', 'Bench', 'Supporter' || n, 'DE', '',
                        'en', 'subscribed', 'bench', %s, %s
                    FROM series
                    """,  # noqa: S608 -- the table name comes from the model
                    [first, last, SYNTHETIC_PREFIX, now, now],
                )
        log(f"  supporters {last:,} / {target:,} ({time.monotonic() - started:.0f} s)")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return _synthetic_count()


def _synthetic_count() -> int:
    table = Supporter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE lower(email) LIKE %s",  # noqa: S608
            [f"{SYNTHETIC_PREFIX}%"],
        )
        return cursor.fetchone()[0]
