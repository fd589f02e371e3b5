"""Benchmark a supporter import in a real worker, and print one JSON line.

A generated CSV (bench/import_file.py: 2% invalid, 10% duplicates, 20% known supporters) is
uploaded as the admin does and imported by a Celery worker (solo pool: one process, so its
peak RSS, the kernel's VmHWM, is the import's). `seconds` is the import's own time, from the
worker's claim to its commit. What the run made is removed at the end, the synthetic
supporters (2M by default, shared with bench_sign and bench_audience) are kept.

On PostgreSQL the run carries its yardstick, the floor: the least any import of this file must
do, timed in the same run right before and right after Rally's import. It is one transaction
that COPYs the file as it is into a temporary table and makes its addresses rows of a scratch
table shaped like the supporters' table, holding the supporters already there and a unique
index on the address: `INSERT … SELECT DISTINCT ON (lower(email)) … ON CONFLICT DO NOTHING`.
No validation, no consent, no tags, no report: `ratio_to_floor` is how many floors Rally's
import takes. CPU seconds of the worker and of PostgreSQL during the import come from /proc.
"""

import contextlib
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, transaction

from bench.import_file import HEADER, NEW_PREFIX, import_file_write
from bench.preconditions import require_migrated
from bench.proc_cpu import CpuMeter, descendants, own_process, postgres_processes_of
from bench.synthetic import SYNTHETIC_PREFIX, synthetic_supporters_ensure
from bench.worker_processes import redis_url_with_db, start_celery_worker
from config.celery_app import app as celery_app
from supporters.imports.mapping import mapping_guess
from supporters.imports.services import supporter_import_create, supporter_import_start
from supporters.models import ConsentRecord, Supporter, SupporterImport, Tag

TAG = "bench-import"
CONSENT_SOURCE = "bench_import"
# Not the default broker database: a `make run` worker there would take the task.
BENCH_REDIS_DB = 12
# The floor's scratch tables; the first is an ordinary table, dropped after each floor.
FLOOR_TABLE = "bench_import_floor"
FLOOR_STAGING = "bench_import_floor_rows"
# What the floor's session may use, as the import's own sessions do (supporters/imports).
FLOOR_SESSION = (
    "SET temp_buffers = '256MB'",
    "SET work_mem = '256MB'",
    "SET synchronous_commit = off",
)


class Command(BaseCommand):
    help = "Import a generated CSV through a real worker; print one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--supporters", type=int, default=2_000_000)
        parser.add_argument("--redis-db", type=int, default=BENCH_REDIS_DB)
        parser.add_argument("--timeout", type=float, default=600)

    def handle(self, *args, rows, supporters, redis_db, timeout, **options):
        if rows < 1 or supporters < 1:
            raise CommandError("--rows and --supporters must be at least 1.")
        require_migrated()
        synthetic_supporters_ensure(supporters, log=self.stderr.write)
        _delete_run()
        redis_url = redis_url_with_db(settings.REDIS_URL, redis_db)
        redis.Redis.from_url(redis_url).delete("bulk")
        celery_app.conf.broker_url = redis_url
        worker = None
        try:
            with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch:
                path = Path(scratch) / "bench-import.csv"
                self.stderr.write(f"Writing {rows:,} rows…")
                expected = import_file_write(path, rows=rows, supporters=supporters)
                with path.open("rb") as file:
                    supporter_import = supporter_import_create(
                        original_name=path.name,
                        tag_names=[TAG],
                        consent_source=CONSENT_SOURCE,
                        consent_wording="Yes, email me about this and other campaigns.",
                        upload=File(file),
                    )
                floor_before = _floor_run(path, self.stderr.write)
                worker = start_celery_worker(
                    name=f"bench-import-{uuid.uuid4().hex[:8]}",
                    env={"REDIS_URL": redis_url, "MEDIA_ROOT": str(settings.MEDIA_ROOT)},
                    log_path=Path(scratch) / "worker.log",
                    concurrency=1,
                    pool="solo",
                )
                self.stderr.write("Importing in a worker…")
                worker_pid = worker.process.pid
                meter = CpuMeter(
                    {
                        "worker": lambda: descendants([worker_pid]),
                        "postgres": _postgres_processes,
                    }
                )
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        _checkpoint(cursor)
                meter.start()
                started = time.monotonic()
                supporter_import_start(
                    supporter_import_id=supporter_import.pk, mapping=mapping_guess(HEADER)
                )
                done = _wait(supporter_import.pk, worker, timeout, self.stderr.write, meter)
                wall = time.monotonic() - started
                cpu_seconds = meter.stop()
                peak_rss_mb = _peak_rss_mb(worker.process.pid)
                worker_log = worker.log()
                worker.stop()
                worker = None
                floor_after = (
                    _floor_run(path, self.stderr.write)
                    if done.status == SupporterImport.Status.DONE
                    else None
                )
            if done.status != SupporterImport.Status.DONE:
                raise CommandError(f"The import {done.status}: {done.error}\n{worker_log[-3000:]}")
            seconds = done.summary["seconds"]
            floors = [floor for floor in (floor_before, floor_after) if floor is not None]
            floor_seconds = round(statistics.mean(f[0] for f in floors), 3) if floors else None
            floor_cpu = round(statistics.mean(f[1] for f in floors), 3) if floors else None
            import_cpu = cpu_seconds["worker"] + cpu_seconds["postgres"]
            result = {
                "rows": done.rows,
                "created": done.created,
                "merged": done.merged,
                "rejected": done.rejected,
                "seconds": seconds,
                "rows_per_s": round(done.rows / seconds, 1),
                "peak_rss_mb": peak_rss_mb,
                # The mean of the floors before and after the import; None on SQLite.
                "floor_seconds": floor_seconds,
                "ratio_to_floor": round(seconds / floor_seconds, 2) if floor_seconds else None,
                "floor_seconds_before": floor_before[0] if floor_before else None,
                "floor_seconds_after": floor_after[0] if floor_after else None,
                # CPU, which a busy machine moves less than seconds: the floor's PostgreSQL
                # processes and this one (it streams the file to COPY), the mean of the two
                # floors; the import's worker and PostgreSQL over it.
                "floor_cpu_seconds": floor_cpu,
                "cpu_ratio_to_floor": round(import_cpu / floor_cpu, 2) if floor_cpu else None,
                # From the task's start to the import's end, read from /proc: the worker and
                # its children, and PostgreSQL's processes for this database (_postgres_processes).
                "worker_cpu_seconds": cpu_seconds["worker"],
                "postgres_cpu_seconds": cpu_seconds["postgres"],
                "read_seconds": done.summary["read_seconds"],
                "merge_seconds": done.summary["merge_seconds"],
                # The rest of merge_seconds is the commit: the deferred foreign-key checks.
                "merge_steps": done.summary["merge_steps"],
                "wall_seconds": round(wall, 2),
                "expected_ok": (done.rows, done.created, done.merged, done.rejected)
                == (expected.rows, expected.created, expected.merged, expected.rejected),
                "supporters": supporters,
                "database": connection.vendor,
            }
        finally:
            if worker is not None:
                worker.stop()
            self.stderr.write("Cleaning up…")
            _delete_run()
        self.stdout.write(json.dumps(result))


def _wait(import_id: int, worker, timeout: float, log, meter: CpuMeter) -> SupporterImport:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        meter.sample()  # PostgreSQL's backends of the import's lanes end with their sessions
        supporter_import = SupporterImport.objects.get(pk=import_id)
        if supporter_import.finished_at is not None:
            return supporter_import
        if worker.process.poll() is not None:
            raise CommandError(f"The worker exited:\n{worker.log()[-3000:]}")
        state = (supporter_import.status, supporter_import.rows_done // 100_000)
        if state != last:
            log(f"  {supporter_import.status}: {supporter_import.rows_done:,} rows")
            last = state
        time.sleep(0.2)
    raise CommandError(f"The import took longer than {timeout:.0f} s:\n{worker.log()[-3000:]}")


def _floor_run(path: Path, log) -> tuple[float, float] | None:
    """Time the floor of importing `path` (the module's docstring); None if not PostgreSQL.

    Return its seconds and the CPU seconds of PostgreSQL's processes and of this one.
    """
    if connection.vendor != "postgresql":
        return None
    supporters = Supporter._meta.db_table
    names = [header.lower().replace(" ", "_") for header in HEADER]
    columns = ", ".join(names)
    log("Timing the floor: COPY and one INSERT … ON CONFLICT…")
    # A session of its own, as each of the import's is: temp_buffers is settable only before
    # the session's first temporary table.
    connection.close()
    try:
        with connection.cursor() as cursor:
            for statement in FLOOR_SESSION:
                cursor.execute(statement)
            _floor_drop(cursor)
            # The supporters there before the import (the floor after it must not count the
            # import's own as conflicts), with the one index the floor keeps.
            cursor.execute(
                f"CREATE TABLE {FLOOR_TABLE} "
                f"(LIKE {supporters} INCLUDING DEFAULTS INCLUDING IDENTITY)"
            )
            cursor.execute(
                f"INSERT INTO {FLOOR_TABLE} SELECT * FROM {supporters} "  # noqa: S608
                f"WHERE email NOT LIKE %s",
                [f"{NEW_PREFIX}%"],
            )
            cursor.execute(f"CREATE UNIQUE INDEX {FLOOR_TABLE}_email ON {FLOOR_TABLE} (email)")
            cursor.execute(f"VACUUM (ANALYZE) {FLOOR_TABLE}")
            _checkpoint(cursor)
            meter = CpuMeter(
                {
                    "postgres": _postgres_processes,
                    "driver": own_process,
                }
            )
            meter.start()
            started = time.monotonic()
            with transaction.atomic():
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {FLOOR_STAGING} "
                    f"({', '.join(f'{name} text' for name in names)})"
                )
                with (
                    path.open("rb") as file,
                    cursor.copy(
                        f"COPY {FLOOR_STAGING} ({columns}) FROM STDIN "
                        f"(FORMAT csv, HEADER true, FORCE_NOT_NULL ({columns}))"
                    ) as copy,
                ):
                    while block := file.read(1 << 20):
                        copy.write(block)
                cursor.execute(
                    f"INSERT INTO {FLOOR_TABLE} (email, first_name, last_name, country, "  # noqa: S608
                    f"postcode, language, status, source, created_at, updated_at, "
                    f"suppression_reason) "
                    f"SELECT DISTINCT ON (lower(email)) lower(email), first_name, last_name, "
                    f"left(country, 2), left(postcode, 20), 'en', 'subscribed', 'bench-floor', "
                    f"now(), now(), '' FROM {FLOOR_STAGING} ORDER BY lower(email) "
                    f"ON CONFLICT DO NOTHING"
                )
            seconds = round(time.monotonic() - started, 3)
            cpu_seconds = sum(meter.stop().values())
            _floor_drop(cursor)
    finally:
        connection.close()
    return seconds, cpu_seconds


def _checkpoint(cursor) -> None:
    """Start a timed part with the WAL of what came before flushed, as each of them does.

    A role without the right (pg_checkpoint) runs without: noisier, not wrong.
    """
    with contextlib.suppress(DatabaseError), transaction.atomic():
        cursor.execute("CHECKPOINT")


def _floor_drop(cursor) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_STAGING}")
    cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")


def _postgres_processes() -> set[int]:
    """PostgreSQL's sessions of this database and the server's own processes (WAL writer,
    checkpointer): an import's writes keep those busy too."""
    return postgres_processes_of(connection.settings_dict["NAME"], server_processes=True)


def _peak_rss_mb(pid: int) -> float:
    """Return a process' peak resident set (VmHWM): exact, where sampling could miss a peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _delete_run() -> None:
    """Remove what a run made, set-based, and put the known supporters back as they were."""
    supporters = Supporter._meta.db_table
    tags = Supporter.tags.through._meta.db_table
    consents = ConsentRecord._meta.db_table
    new = f"{NEW_PREFIX}%"
    with transaction.atomic(), connection.cursor() as cursor:
        for tag in Tag.objects.filter(name=TAG):
            cursor.execute(f"DELETE FROM {tags} WHERE tag_id = %s", [tag.pk])  # noqa: S608
        cursor.execute(
            f"DELETE FROM {consents} WHERE supporter_id IN "  # noqa: S608
            f"(SELECT id FROM {supporters} WHERE email LIKE %s OR email LIKE %s)",
            [new, f"{SYNTHETIC_PREFIX}%"],
        )
        cursor.execute(f"DELETE FROM {supporters} WHERE email LIKE %s", [new])  # noqa: S608
        runs = SupporterImport.objects.filter(consent_source=CONSENT_SOURCE)
        for run in runs.exclude(file=""):
            run.file.delete(save=False)  # left by a run that failed before the worker read it
        runs.delete()
        Tag.objects.filter(name=TAG).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _floor_drop(cursor)  # left by a run that stopped during its floor
            for table in (supporters, tags, consents):
                cursor.execute(f"VACUUM (ANALYZE) {table}")
