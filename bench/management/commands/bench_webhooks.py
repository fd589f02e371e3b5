"""Benchmark ESP webhook intake over real HTTP, then its processing; print one JSON line.

A mailing of --events sent messages is made for the run (its own supporters and deliveries,
marked sent, as after a real send). wrk (bench/webhooks.lua) posts --events Postmark tracking
events to /anymail/postmark/tracking/ with the webhook secret, through the web server as
deployed (granian, production settings): deliveries, hard bounces (7%) and spam complaints
(3%), carrying the metadata the send queue attaches, and a share of exact repeats as an ESP's
retries are (--duplicates). Intake is what is timed: `req_per_s` and `p99_ms` are the web
process's. Then a real Celery worker processes the tracking queue (ledger, suppression, the
breaker) and `process_seconds` times it until every stored event is processed. Everything the
run made is deleted at the end.
"""

import base64
import json
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from bench.preconditions import require_migrated, require_postgresql, require_wrk
from bench.web_server import SERVERS, WebServer, server_options_settle
from bench.worker_processes import redis_url_with_db, start_celery_worker
from bench.wrk import run_wrk
from campaigns.models import Campaign
from mailings.models import Delivery, Mailing, TrackingEvent
from supporters.models import Engagement, Supporter

LUA_SCRIPT = Path(__file__).resolve().parents[2] / "webhooks.lua"
TRACKING_PATH = "/anymail/postmark/tracking/"
# The benchmark's own Redis database (the queued tracking tasks), emptied before and after.
# bench_sign uses 13, bench_send 14.
BENCH_REDIS_DB = 12
CORES = os.cpu_count() or 2
POLL_SECONDS = 0.2


class Command(BaseCommand):
    help = "Post N Postmark webhook events through a web server, process them; one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=20_000, help="webhook posts in all")
        parser.add_argument("--concurrency", type=int, default=50, help="open connections")
        parser.add_argument(
            "--duplicates",
            type=float,
            default=0.05,
            help="share of posts that repeat an event already posted (0…1), as ESP retries do",
        )
        parser.add_argument("--server", choices=SERVERS, default="granian")
        parser.add_argument(
            "--worker-class", choices=["sync", "gthread"], default="gthread", help="gunicorn's"
        )
        parser.add_argument("--workers", type=int, default=None, help="default: cores")
        parser.add_argument("--threads", type=int, default=16, help="per web worker")
        parser.add_argument(
            "--worker-concurrency", type=int, default=CORES, help="tracking worker's pool size"
        )
        parser.add_argument("--timeout", type=float, default=3600, help="seconds per phase")

    def handle(self, *args, **options):
        events, concurrency = options["events"], options["concurrency"]
        server_options_settle(options, cores=CORES)
        require_postgresql("bench_webhooks")
        if events < 1 or concurrency < 1:
            raise CommandError("--events and --concurrency must be at least 1.")
        if not 0 <= options["duplicates"] < 1:
            raise CommandError("--duplicates is a share between 0 and 1 (less than 1).")
        wrk = require_wrk()
        require_migrated()

        run = uuid.uuid4().hex[:8]
        redis_url = redis_url_with_db(settings.REDIS_URL, BENCH_REDIS_DB)
        redis_client = redis.Redis.from_url(redis_url)
        redis_client.flushdb()
        self.stderr.write(f"Creating a mailing of {events:,} sent messages (run {run})…")
        mailing, first_delivery_id = _create_sent_mailing(run, events)
        try:
            with tempfile.TemporaryDirectory() as logs:
                intake = self._post(
                    run, mailing, first_delivery_id, redis_url=redis_url, wrk=wrk,
                    logs=Path(logs), **options,
                )  # fmt: skip
                run_events = TrackingEvent.objects.filter(message_id__startswith=f"bench-{run}-")
                stored = run_events.count()
                tasks_queued = redis_client.llen("tracking")
                queued = _events_queued(redis_client)
                processing = self._process(
                    run_events, stored, redis_url=redis_url, logs=Path(logs), **options
                )
        finally:
            self.stderr.write("Cleaning up…")
            _delete_run(run, mailing)
            redis_client.flushdb()

        latency = intake.get("latency_us", {})
        accepted = intake["ok"]
        result = {
            "events": intake["requests"],
            "accepted": accepted,
            "processed": processing["processed"],
            "duplicates_ignored": accepted - stored,
            "req_per_s": _per_second(intake["answered"], intake["seconds"]),
            "p99_ms": _ms(latency.get("p99")),
            "p50_ms": _ms(latency.get("p50")),
            "p95_ms": _ms(latency.get("p95")),
            "max_ms": _ms(latency.get("max")),
            "seconds": round(intake["seconds"], 2),
            "errors": intake["requests"] - accepted,
            "duplicates_sent": intake["duplicates"],
            "stored": stored,
            "queued": queued,
            "tasks_queued": tasks_queued,
            "process_seconds": processing["seconds"],
            "processed_per_s": _per_second(processing["processed"], processing["seconds"]),
            "concurrency": concurrency,
            "server": options["server"],
            "workers": options["workers"],
            "worker_class": options["worker_class"],
            "threads": options["threads"],
            "worker_concurrency": options["worker_concurrency"],
            "database": connection.vendor,
        }
        self.stdout.write(json.dumps(result))

    def _post(self, run, mailing, first_delivery_id, *, redis_url, wrk, logs, **options) -> dict:
        """Start the web server and post every event with wrk; return wrk's summary."""
        secret = f"bench:{secrets.token_urlsafe(24)}"
        server = WebServer(
            server=options["server"],
            worker_class=options["worker_class"],
            workers=options["workers"],
            threads=options["threads"],
            redis_url=redis_url,
            log_path=logs / "server.log",
            extra_env={"ANYMAIL_WEBHOOK_SECRET": secret},
        )
        try:
            url = server.start()
            self.stderr.write(
                f"{options['server']} at {url}: {options['workers']} workers × "
                f"{options['threads']} threads; posting {options['events']:,} events at "
                f"concurrency {options['concurrency']}…"
            )
            return run_wrk(
                wrk,
                f"{url}{TRACKING_PATH}",
                mode="post",
                requests=options["events"],
                concurrency=options["concurrency"],
                timeout=options["timeout"],
                run=run,
                script=LUA_SCRIPT,
                extra_env={
                    "BENCH_MAILING_ID": str(mailing.pk),
                    "BENCH_FIRST_DELIVERY_ID": str(first_delivery_id),
                    "BENCH_DUPLICATES": str(options["duplicates"]),
                    "BENCH_AUTH": "Basic " + base64.b64encode(secret.encode()).decode(),
                },
            )
        finally:
            server.stop()

    def _process(self, run_events, stored, *, redis_url, logs, **options) -> dict:
        """Let a real worker process the tracking queue; time it until every event is done."""
        self.stderr.write(f"Processing {stored:,} stored events with a Celery worker…")
        worker = start_celery_worker(
            name=f"bench-webhooks-{os.getpid()}",
            env={"DJANGO_DEBUG": "false", "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"},
            log_path=logs / "worker.log",
            concurrency=options["worker_concurrency"],
        )
        try:
            started = time.monotonic()
            unprocessed = run_events.filter(processed_at__isnull=True)
            while unprocessed.exists():
                if worker.process.poll() is not None:
                    raise CommandError(f"The worker died:\n{worker.log()[-3000:]}")
                if time.monotonic() - started > options["timeout"]:
                    raise CommandError(
                        f"{unprocessed.count():,} events unprocessed after "
                        f"{options['timeout']:.0f} s:\n{worker.log()[-3000:]}"
                    )
                time.sleep(POLL_SECONDS)
            seconds = time.monotonic() - started
        finally:
            worker.stop()
        return {
            "processed": run_events.filter(processed_at__isnull=False).count(),
            "seconds": round(seconds, 2),
        }


def _create_sent_mailing(run: str, count: int) -> tuple[Mailing, int]:
    """Create a sent mailing to `count` new supporters; return it and its first delivery's id.

    Delivery n (0-based) goes to bench-<run>-<n>@example.invalid with ESP message id
    bench-<run>-<n>, and has id first + n: webhooks.lua names deliveries so.
    """
    campaign = Campaign.objects.create(name=f"Benchmark {run}", slug=f"bench-{run}")
    now = timezone.now()
    mailing = Mailing.objects.create(
        campaign=campaign,
        name=f"Benchmark webhooks {run}",
        subject="Add your name",
        from_name="Rally campaigns",
        from_email="campaigns@rally.example",
        html_body="<p>Now.</p>",
        text_body="Now.",
        # Sent and finished, so the breaker looks at it and stops (events come after sends).
        status=Mailing.Status.SENT,
        started_at=now,
        audience_snapshot_at=now,
        finished_at=now,
    )
    supporters = Supporter._meta.db_table
    deliveries = Delivery._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {supporters} (email, first_name, last_name, country, postcode,
                language, status, source, created_at, updated_at)
            SELECT 'bench-' || %s || '-' || n || '@example.invalid', 'First' || n, 'Last' || n,
                'GB', '', 'en', 'subscribed', 'bench', now(), now()
            FROM generate_series(0, %s - 1) AS n
            """,  # noqa: S608 -- table names from the models
            [run, count],
        )
        # One statement, in n order: the ids come from the sequence one after another.
        cursor.execute(
            f"""
            INSERT INTO {deliveries} (mailing_id, supporter_id, status, version_language,
                claimed_by, esp_message_id, error, created_at, updated_at, sent_at)
            SELECT %s, supporter.id, 'sent', '', '', 'bench-' || %s || '-' || n, '', now(),
                now(), now()
            FROM generate_series(0, %s - 1) AS n
            JOIN {supporters} AS supporter
                ON supporter.email = 'bench-' || %s || '-' || n || '@example.invalid'
            ORDER BY n
            RETURNING id
            """,  # noqa: S608 -- table names from the models
            [mailing.pk, run, count, run],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
    if ids != list(range(ids[0], ids[0] + count)):
        raise CommandError("The deliveries' ids are not consecutive; run the benchmark again.")
    first = Delivery.objects.get(pk=ids[0])
    if first.esp_message_id != f"bench-{run}-0":
        raise CommandError("The deliveries' ids are not in message order.")
    return mailing, ids[0]


_OF_RUN_SUPPORTERS = (
    f"supporter_id IN (SELECT id FROM {Supporter._meta.db_table} WHERE email LIKE %s)"  # noqa: S608
)


def _delete_run(run: str, mailing: Mailing) -> None:
    """Remove everything the run created, set-based."""
    with transaction.atomic(), connection.cursor() as cursor:
        for model, condition, value in (
            (TrackingEvent, "message_id LIKE %s", f"bench-{run}-%"),
            (Delivery, "mailing_id = %s", mailing.pk),
            # Opens and clicks wrote Engagement rows (supporters/engagement_records.py).
            (Engagement, _OF_RUN_SUPPORTERS, f"bench-{run}-%@example.invalid"),
            (Supporter, "email LIKE %s", f"bench-{run}-%@example.invalid"),
        ):
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} WHERE {condition}",  # noqa: S608
                [value],
            )
        Mailing.objects.filter(pk=mailing.pk).delete()
        Campaign.objects.filter(slug=f"bench-{run}").delete()


def _events_queued(redis_client) -> int:
    """Count the event ids in the tracking queue's tasks (a task carries one or a batch)."""
    count = 0
    for raw in redis_client.lrange("tracking", 0, -1):
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        count += len(args[0]) if isinstance(args[0], list) else 1
    return count


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else round(microseconds / 1000, 2)


def _per_second(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0
