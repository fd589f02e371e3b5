"""Benchmark a supporter import in a real worker, and print one JSON line.

A generated CSV (bench/import_file.py: 2% invalid, 10% duplicates, 20% known supporters) is
uploaded as the admin does and imported by a Celery worker (solo pool: one process, so its
peak RSS, the kernel's VmHWM, is the import's). `seconds` is the import's own time, from the
worker's claim to its commit. What the run made is removed at the end, the synthetic
supporters (2M by default, shared with bench_sign and bench_audience) are kept.
"""

import json
import tempfile
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from bench.import_file import HEADER, NEW_PREFIX, import_file_write
from bench.preconditions import require_migrated
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
                worker = start_celery_worker(
                    name=f"bench-import-{uuid.uuid4().hex[:8]}",
                    env={"REDIS_URL": redis_url, "MEDIA_ROOT": str(settings.MEDIA_ROOT)},
                    log_path=Path(scratch) / "worker.log",
                    concurrency=1,
                    pool="solo",
                )
                self.stderr.write("Importing in a worker…")
                started = time.monotonic()
                supporter_import_start(
                    supporter_import_id=supporter_import.pk, mapping=mapping_guess(HEADER)
                )
                done = _wait(supporter_import.pk, worker, timeout, self.stderr.write)
                wall = time.monotonic() - started
                peak_rss_mb = _peak_rss_mb(worker.process.pid)
                worker_log = worker.log()
            if done.status != SupporterImport.Status.DONE:
                raise CommandError(f"The import {done.status}: {done.error}\n{worker_log[-3000:]}")
            seconds = done.summary["seconds"]
            result = {
                "rows": done.rows,
                "created": done.created,
                "merged": done.merged,
                "rejected": done.rejected,
                "seconds": seconds,
                "rows_per_s": round(done.rows / seconds, 1),
                "peak_rss_mb": peak_rss_mb,
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


def _wait(import_id: int, worker, timeout: float, log) -> SupporterImport:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
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
            for table in (supporters, tags, consents):
                cursor.execute(f"VACUUM (ANALYZE) {table}")
