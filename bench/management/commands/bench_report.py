"""Benchmark a mailing's report.json over real HTTP, and what its counters cost webhooks.

A mailing of --deliveries sent messages is made for the run, to its own supporters at a mix
of mailbox domains (gmail.com, yandex.ru, mail.ru, … and 20,000 small ones), 30% of them sent
the Russian version; --events events are written to its ledger, spread over 30 days: ESP
deliveries, bounces and complaints, opens, clicks of its links, signatures and unsubscribes.
Its counters are then counted from that ledger (`report_counters_rebuild`, timed as
`rebuild_seconds`), so they hold what the webhooks, clicks and signatures would have left.

report.json is asked for --repeat times by one logged-in campaigner through the web server as
deployed (granian, production settings), after a few untimed requests: `p50_ms` and `p95_ms`
by nearest rank, timed by the client. The yardstick, in the same run: the same figures counted
from the ledger itself (`ledger_counts`, what a report would cost without counters), as
`ledger_scan_ms`, and `ratio_to_ledger_scan` = p95 / that.

The progress page's poll, progress.json of the same mailing, is asked for as often on the same
server, after report.json: `progress_p50_ms` and `progress_p95_ms`. It reads the mailing's
counters by status (mailings/delivery_counts.py), the last minute's sends, and the report's
counters for its results. Its yardstick, in the same run: the mailing's deliveries counted by
status from the ledger, as the poll counted them before it had counters
(`progress_ledger_count_ms`, the median of --ledger-repeat), and `progress_ratio_to_ledger_count`
= progress p95 / that. `progress_reads_p50_ms` and `progress_reads_p95_ms` time the poll's
reads alone in this process (`mailing_progress` and `mailing_results`, --repeat times), without
the web server, the session and the admin's checks around them. `delivery_count_rows` is how
many counter rows the poll summed.

Then what keeping the counters costs webhook processing: --webhook-events stored Postmark
events about another mailing of as many messages, the mix of bench_webhooks (3% complaints,
7% hard bounces, the rest deliveries), queued --events-per-task to a task as its intake
queues them, processed by a real Celery worker; once with the counters off
(RALLY_REPORT_BUCKETS=false, a setting only this benchmark turns off) and once on, in turns,
--webhook-rounds times each, the ledger put back between rounds. `bucket_overhead` is the
best time with counters over the best time without, less one: on a machine shared with other
work a round can take half as long again as the one before it, and the best of a few rounds
is what the work itself costs. Every round's time is in the line too. Everything the run made
is deleted at the end.
"""

import json
import math
import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from bench.preconditions import require_migrated, require_postgresql
from bench.web_server import WebServer
from bench.worker_processes import redis_url_with_db, start_celery_worker
from campaigns.models import Campaign, Petition, Signature
from config.celery_app import app as celery_app
from mailings.delivery_counts import ledger_delivery_counts
from mailings.feedback import tasks
from mailings.models import (
    Delivery,
    DeliveryCount,
    LinkClick,
    Mailing,
    MailingVersion,
    ReportBreakdown,
    ReportHour,
    TrackingEvent,
)
from mailings.reports.ledger import ledger_counts, report_counters_rebuild
from mailings.selectors import mailing_progress, mailing_results
from supporters.models import Engagement, Supporter

# The benchmark's own Redis database by default (the web server's and the worker's broker),
# emptied before and after. bench_webhooks uses 12, bench_sign 13, bench_send 14.
BENCH_REDIS_DB = 11
CORES = os.cpu_count() or 2
POLL_SECONDS = 0.1
# The run's ledger is spread over this many hours: the chart's three hourly days, then daily.
SPREAD_HOURS = 30 * 24
HTML_BODY = (
    '<p>Dear {{ first_name|default:"friend" }},</p>'
    '<p><a href="{{ petition_url }}">Add your name</a></p>'
    '<p><a href="https://news.example.org/marches">Read what happened</a></p>'
    '<p><a href="https://donate.example.org/">Give</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
# Mailbox domains by delivery number n: n mod 100 below each bound gets the domain beside it;
# the rest get one of 20,011 small domains, as a real list's long tail.
DOMAINS = (
    (30, "gmail.com"), (45, "yandex.ru"), (58, "mail.ru"), (66, "outlook.com"),
    (72, "yahoo.com"), (77, "icloud.com"), (82, "rambler.ru"), (85, "gmx.de"),
)  # fmt: skip


class Command(BaseCommand):
    help = "Time report.json of a mailing of 1M deliveries, and the counters' cost to webhooks."

    def add_arguments(self, parser):
        parser.add_argument("--deliveries", type=int, default=1_000_000)
        parser.add_argument(
            "--events", type=int, default=200_000, help="events in the mailing's ledger"
        )
        parser.add_argument("--repeat", type=int, default=50, help="timed report.json requests")
        parser.add_argument("--ledger-repeat", type=int, default=2, help="timed ledger counts")
        parser.add_argument("--webhook-events", type=int, default=20_000)
        parser.add_argument("--webhook-rounds", type=int, default=3, help="each way, in turns")
        parser.add_argument(
            "--events-per-task",
            type=int,
            default=9,
            help="event ids per processing task (bench_webhooks' intake queues about 9)",
        )
        parser.add_argument(
            "--worker-concurrency", type=int, default=CORES, help="tracking worker's pool size"
        )
        parser.add_argument("--redis-db", type=int, default=BENCH_REDIS_DB)
        parser.add_argument("--timeout", type=float, default=1800, help="seconds per phase")

    def handle(self, *args, **options):
        require_postgresql("bench_report")
        for name in ("deliveries", "repeat", "ledger_repeat", "webhook_rounds", "events_per_task"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if not 0 <= options["events"] <= options["deliveries"]:
            raise CommandError("--events is between 0 and --deliveries.")
        if options["webhook_events"] < 0:
            raise CommandError("--webhook-events may not be negative.")
        require_migrated()

        run = uuid.uuid4().hex[:8]
        redis_url = redis_url_with_db(settings.REDIS_URL, options["redis_db"])
        redis_client = redis.Redis.from_url(redis_url)
        redis_client.flushdb()
        # Tasks this process queues (webhook events) go to the benchmark's broker database.
        celery_app.conf.broker_url = redis_url
        try:
            with tempfile.TemporaryDirectory() as logs:
                result = self._measure(run, redis_url, redis_client, Path(logs), **options)
        finally:
            self.stderr.write("Cleaning up…")
            _delete_run(run)
            redis_client.flushdb()
        self.stdout.write(json.dumps(result))

    def _measure(self, run, redis_url, redis_client, logs, **options) -> dict:
        deliveries, events = options["deliveries"], options["events"]
        self.stderr.write(f"Creating a mailing of {deliveries:,} deliveries (run {run})…")
        started = time.monotonic()
        mailing = _create_mailing(run, "report", deliveries, version=True)
        _write_ledger_events(mailing, deliveries, events)
        _analyze(Supporter, Delivery, LinkClick, Signature)
        create_seconds = time.monotonic() - started
        self.stderr.write(f"Counting its {events:,} events into the counters…")
        started = time.monotonic()
        counted = report_counters_rebuild(mailing_id=mailing.pk)
        rebuild_seconds = time.monotonic() - started
        self.stderr.write("Timing report.json over HTTP…")
        timed = self._time_pages(run, mailing, redis_url, logs, options["repeat"])
        (samples, report), (progress_samples, progress) = timed
        if {key: report[key] for key in ("sent", "signatures")} != {
            key: counted.totals()[key] for key in ("sent", "signatures")
        }:
            raise CommandError("report.json disagrees with the ledger.")
        by_status = {}
        for (status, _), n in ledger_delivery_counts(mailing.pk).items():
            by_status[status] = by_status.get(status, 0) + n
        if (progress["total"], progress["sent"]) != (deliveries, by_status.get("sent", 0)):
            raise CommandError(f"progress.json disagrees with the ledger: {by_status}")
        reads_samples = []
        for _ in range(options["repeat"]):
            started = time.perf_counter()
            mailing_progress(mailing)
            mailing_results(mailing)
            reads_samples.append((time.perf_counter() - started) * 1000)
        self.stderr.write("Counting the same figures from the ledger…")
        ledger_samples, status_samples = [], []
        for _ in range(options["ledger_repeat"]):
            started = time.monotonic()
            ledger_counts(mailing.pk)
            ledger_samples.append((time.monotonic() - started) * 1000)
            started = time.monotonic()
            ledger_delivery_counts(mailing.pk)
            status_samples.append((time.monotonic() - started) * 1000)
        without, with_buckets = self._time_webhooks(run, redis_url, redis_client, logs, **options)
        p95 = _percentile(samples, 95)
        ledger_ms = round(statistics.median(ledger_samples), 1)
        progress_p95 = _percentile(progress_samples, 95)
        status_ms = round(statistics.median(status_samples), 1)
        overhead = min(with_buckets) / min(without) - 1 if without and min(without) else None
        return {
            "deliveries": deliveries,
            "events": events,
            "p50_ms": _percentile(samples, 50),
            "p95_ms": p95,
            "max_ms": round(max(samples), 2),
            "repeat": options["repeat"],
            "ledger_scan_ms": ledger_ms,
            "ratio_to_ledger_scan": round(p95 / ledger_ms, 4) if ledger_ms else None,
            "progress_p50_ms": _percentile(progress_samples, 50),
            "progress_p95_ms": progress_p95,
            "progress_reads_p50_ms": _percentile(reads_samples, 50),
            "progress_reads_p95_ms": _percentile(reads_samples, 95),
            "progress_ledger_count_ms": status_ms,
            "progress_ratio_to_ledger_count": (
                round(progress_p95 / status_ms, 4) if status_ms else None
            ),
            "delivery_count_rows": DeliveryCount.objects.filter(mailing=mailing).count(),
            "hour_rows": ReportHour.objects.filter(mailing=mailing).count(),
            "breakdown_rows": ReportBreakdown.objects.filter(mailing=mailing).count(),
            "series_points": len(report["series"]),
            "agrees_with_ledger": True,
            "rebuild_seconds": round(rebuild_seconds, 1),
            "create_seconds": round(create_seconds, 1),
            "webhook_events": options["webhook_events"],
            "events_per_task": options["events_per_task"],
            "webhook_seconds_without_buckets": without,
            "webhook_seconds_with_buckets": with_buckets,
            "bucket_overhead": None if overhead is None else round(overhead, 3),
            "worker_concurrency": options["worker_concurrency"],
            "server": "granian",
            "database": connection.vendor,
        }

    def _time_pages(self, run, mailing, redis_url, logs, repeat) -> list[tuple[list[float], dict]]:
        """Ask for report.json, then progress.json, as a logged-in user, over one kept-alive
        connection; return each one's times and its last answer."""
        user = User.objects.create_superuser(f"bench-report-{run}", password=None)
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        # The session's hash is made with this process' SECRET_KEY: the server gets the same.
        server = WebServer(
            server="granian", workers=1, threads=4, redis_url=redis_url,
            log_path=logs / "server.log", extra_env={"SECRET_KEY": settings.SECRET_KEY},
        )  # fmt: skip
        try:
            url = urlsplit(server.start())
            http = HTTPConnection(url.hostname, url.port, timeout=60)
            headers = {"Cookie": f"sessionid={session.session_key}"}

            def get(page: str) -> dict:
                http.request("GET", f"/admin/mailings/mailing/{mailing.pk}/{page}", headers=headers)
                response = http.getresponse()
                body = response.read()
                if response.status != 200:
                    raise CommandError(f"{page} answered {response.status}: {body[:500]}")
                return json.loads(body)

            timed = []
            for page in ("report.json", "progress.json"):
                for _ in range(3):
                    answer = get(page)  # untimed: the process compiles the mailing, caches warm
                samples = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    answer = get(page)
                    samples.append((time.perf_counter() - started) * 1000)
                timed.append((samples, answer))
            http.close()
        finally:
            server.stop()
        return timed

    def _time_webhooks(self, run, redis_url, redis_client, logs, **options):
        """Process the same events with the counters off and on, in turns; return the times."""
        count = options["webhook_events"]
        if not count:
            return [], []
        self.stderr.write(f"Creating a mailing of {count:,} sent messages for webhooks…")
        mailing = _create_mailing(run, "webhooks", count, version=False)
        first_id = Delivery.objects.filter(mailing=mailing).order_by("pk").first().pk
        times: dict[bool, list[float]] = {False: [], True: []}
        for round_number in range(options["webhook_rounds"]):
            for buckets in (False, True):
                _reset_webhook_mailing(mailing)
                redis_client.flushdb()
                _store_webhook_events(run, mailing, first_id, count, f"{round_number}{buckets:d}")
                self.stderr.write(
                    f"Processing {count:,} events, counters {'on' if buckets else 'off'}…"
                )
                times[buckets].append(
                    self._process(mailing, redis_url, logs, buckets=buckets, **options)
                )
        return times[False], times[True]

    def _process(self, mailing, redis_url, logs, *, buckets: bool, **options) -> float:
        """Start a worker, wait until it is ready, queue the events; time until all are done."""
        worker = start_celery_worker(
            name=f"bench-report-{os.getpid()}",
            env={
                "DJANGO_DEBUG": "false",
                "REDIS_URL": redis_url,
                "LOG_LEVEL": "WARNING",
                "RALLY_REPORT_BUCKETS": "true" if buckets else "false",
            },
            log_path=logs / "worker.log",
            concurrency=options["worker_concurrency"],
        )
        try:
            deadline = time.monotonic() + 60
            while " ready." not in worker.log():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    raise CommandError(f"The worker did not start:\n{worker.log()[-3000:]}")
                time.sleep(POLL_SECONDS)
            events = TrackingEvent.objects.filter(
                processed_at__isnull=True, metadata__mailing_id=str(mailing.pk)
            )
            pks = sorted(events.values_list("pk", flat=True))
            unprocessed = TrackingEvent.objects.filter(pk__in=pks, processed_at__isnull=True)
            started = time.monotonic()
            per_task = options["events_per_task"]
            with celery_app.connection_for_write() as broker:
                for start in range(0, len(pks), per_task):
                    _queue(pks[start : start + per_task], broker)
            while unprocessed.exists():
                if worker.process.poll() is not None:
                    raise CommandError(f"The worker died:\n{worker.log()[-3000:]}")
                if time.monotonic() - started > options["timeout"]:
                    raise CommandError(f"Events unprocessed:\n{worker.log()[-3000:]}")
                time.sleep(POLL_SECONDS)
            return round(time.monotonic() - started, 2)
        finally:
            worker.stop()


def _queue(event_pks: list[int], broker) -> None:
    tasks.tracking_events_process_task.apply_async((event_pks,), connection=broker)


def _percentile(samples: list[float], percent: int) -> float:
    """Return the nearest-rank percentile: a time that was measured, not an interpolation."""
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)], 2)


def _create_mailing(run: str, kind: str, count: int, *, version: bool) -> Mailing:
    """Create a sent mailing to `count` new supporters of the run, with its deliveries.

    Delivery n goes to bench-<run>-<kind>-<n>@<domain of n>, with ESP message id
    bench-<run>-<kind>-<n>, sent within the first two hours; with `version`, 30% of them get
    the Russian version.
    """
    campaign, _ = Campaign.objects.get_or_create(
        slug=f"bench-{run}", defaults={"name": f"Benchmark {run}"}
    )
    petition, _ = Petition.objects.get_or_create(
        slug=f"bench-{run}",
        defaults={
            "campaign": campaign, "title": "Free the marchers", "body": "<p>Now.</p>",
            "target": "The authorities",
        },
    )  # fmt: skip
    started = timezone.now() - timedelta(hours=SPREAD_HOURS)
    mailing = Mailing.objects.create(
        campaign=campaign,
        petition=petition,
        name=f"Benchmark {kind} {run}",
        subject="Add your name",
        from_name="Rally campaigns",
        from_email="campaigns@rally.example",
        html_body=HTML_BODY,
        text_body="Add your name: {{ petition_url }}",
        status=Mailing.Status.SENT,
        started_at=started,
        audience_snapshot_at=started,
        finished_at=started + timedelta(hours=2),
    )
    if version:
        MailingVersion.objects.create(
            mailing=mailing, language="ru", subject="Подпишите", html_body=HTML_BODY
        )
    domain = (
        "CASE "
        + " ".join(f"WHEN mod(n, 100) < {bound} THEN '{name}'" for bound, name in DOMAINS)
        + " ELSE 'd' || mod(n, 20011) || '.example' END"
    )
    prefix = f"bench-{run}-{kind}-"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Supporter._meta.db_table} (email, first_name, last_name, country,
                postcode, language, status, source, created_at, updated_at)
            SELECT %s || n || '@' || {domain}, 'First' || n, 'Last' || n, 'GB', '',
                CASE WHEN %s AND mod(n, 10) >= 7 THEN 'ru' ELSE 'en' END, 'subscribed', 'bench',
                now(), now()
            FROM generate_series(0, %s - 1) AS n
            """,  # noqa: S608 -- table names from the models, the domains from DOMAINS
            [prefix, version, count],
        )
        cursor.execute(
            f"""
            INSERT INTO {Delivery._meta.db_table} (mailing_id, supporter_id, status,
                version_language, claimed_by, esp_message_id, error, created_at, updated_at,
                sent_at)
            SELECT %s, supporter.id, 'sent', CASE WHEN supporter.language = 'ru' THEN 'ru'
                ELSE '' END, '', %s || n, '', %s, %s,
                %s + (n * interval '7200 seconds') / %s
            FROM generate_series(0, %s - 1) AS n
            JOIN {Supporter._meta.db_table} AS supporter
                ON supporter.email = %s || n || '@' || {domain}
            ORDER BY n
            """,  # noqa: S608 -- table names from the models, the domains from DOMAINS
            [mailing.pk, prefix, started, started, started, count, count, prefix],
        )
    return mailing


def _write_ledger_events(mailing: Mailing, count: int, events: int) -> None:
    """Write about `events` events to the mailing's ledger, by delivery number n.

    Of every 1,000 deliveries (n mod 1000 = k): 100 delivered (k mod 10 = 0; complained too
    when k = 0), 5 hard and 5 soft bounces, 60 opened, of whom 10 clicked (each both the
    petition and the news link) and 5 signed, and 4 unsubscribed by the mailing's link: 200
    events a thousand. Each at a time spread over SPREAD_HOURS after sending began; `events`
    below 20% of `count` keeps to the first deliveries.
    """
    last = min(count, events * 5)
    deliveries = Delivery._meta.db_table
    seconds = SPREAD_HOURS * 3600
    numbered = f"""
        SELECT id, id - (SELECT min(id) FROM {deliveries} WHERE mailing_id = %(mailing)s) AS n,
            sent_at
        FROM {deliveries} WHERE mailing_id = %(mailing)s
    """  # noqa: S608 -- table names from the models
    at = f"numbered.sent_at + mod(numbered.n * 7919, {seconds}) * interval '1 second'"
    params = {"mailing": mailing.pk, "last": last, "petition": mailing.petition_id}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {deliveries} AS d SET
                esp_status = CASE
                    WHEN mod(numbered.n, 1000) = 0 THEN 'complained'
                    WHEN mod(numbered.n, 10) = 0 THEN 'delivered'
                    WHEN mod(numbered.n, 200) = 1 THEN 'bounced'
                    WHEN mod(numbered.n, 200) = 2 THEN 'soft_bounced' ELSE '' END,
                esp_status_at = CASE WHEN mod(numbered.n, 10) = 0 OR mod(numbered.n, 200) IN (1, 2)
                    THEN {at} END,
                opened_at = CASE WHEN mod(numbered.n, 100) IN (3, 5, 6, 7, 8, 9) THEN {at} END,
                clicked_at = CASE WHEN mod(numbered.n, 100) = 3 THEN {at} END,
                unsubscribed_at = CASE WHEN mod(numbered.n, 250) = 4 THEN {at} END
            FROM ({numbered}) AS numbered
            WHERE d.id = numbered.id AND numbered.n < %(last)s
            """,  # noqa: S608 -- table names from the models
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO {LinkClick._meta.db_table} (mailing_id, supporter_id, link_index, url,
                created_at)
            SELECT %(mailing)s, d.supporter_id, link.number, 'https://example.org/', {at}
            FROM ({numbered}) AS numbered
            JOIN {deliveries} AS d ON d.id = numbered.id
            CROSS JOIN (VALUES (0), (1)) AS link(number)
            WHERE mod(numbered.n, 100) = 3 AND numbered.n < %(last)s
            """,  # noqa: S608 -- table names from the models
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO {Signature._meta.db_table} (petition_id, supporter_id, created_at,
                confirmed_at, mailing_id, source, consented)
            SELECT %(petition)s, d.supporter_id, {at}, {at}, %(mailing)s, 'mailing', true
            FROM ({numbered}) AS numbered
            JOIN {deliveries} AS d ON d.id = numbered.id
            WHERE mod(numbered.n, 200) = 3 AND numbered.n < %(last)s
            """,  # noqa: S608 -- table names from the models
            params,
        )


def _store_webhook_events(run, mailing, first_id, count, round_tag) -> None:
    """Store Postmark's events about each message, as intake stores them, unprocessed.

    Message n: n mod 100 < 3 a spam complaint, < 10 a hard bounce, else a delivery (as
    bench_webhooks' webhooks.lua posts them).
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TrackingEvent._meta.db_table} (esp, event_id, event_type,
                reject_reason, message_id, recipient, occurred_at, description, payload,
                metadata, created_at, outcome)
            SELECT 'postmark', %s || n, kind.event_type, kind.reason, d.esp_message_id,
                supporter.email, now(), '', kind.payload,
                jsonb_build_object('delivery_id', d.id::text, 'mailing_id', %s::text), now(), ''
            FROM generate_series(0, %s - 1) AS n
            JOIN {Delivery._meta.db_table} AS d ON d.id = %s + n
            JOIN {Supporter._meta.db_table} AS supporter ON supporter.id = d.supporter_id
            CROSS JOIN LATERAL (SELECT
                CASE WHEN mod(n, 100) < 3 THEN 'complained'
                    WHEN mod(n, 100) < 10 THEN 'bounced' ELSE 'delivered' END AS event_type,
                CASE WHEN mod(n, 100) < 3 THEN 'spam'
                    WHEN mod(n, 100) < 10 THEN 'bounced' ELSE '' END AS reason,
                CASE WHEN mod(n, 100) < 3 THEN %s::jsonb
                    WHEN mod(n, 100) < 10 THEN %s::jsonb ELSE %s::jsonb END AS payload
            ) AS kind
            """,  # noqa: S608 -- table names from the models
            [
                f"bench-{run}-{round_tag}-",
                mailing.pk,
                count,
                first_id,
                json.dumps({"RecordType": "SpamComplaint", "Type": "SpamComplaint"}),
                json.dumps({"RecordType": "Bounce", "Type": "HardBounce"}),
                json.dumps({"RecordType": "Delivery"}),
            ],  # fmt: skip
        )


def _reset_webhook_mailing(mailing: Mailing) -> None:
    """Put the webhooks' mailing back as it was sent: no events, feedback or suppressions."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {TrackingEvent._meta.db_table} "  # noqa: S608
            "WHERE metadata->>'mailing_id' = %s",
            [str(mailing.pk)],
        )
        cursor.execute(
            f"UPDATE {Delivery._meta.db_table} SET esp_status = '', esp_status_at = NULL "  # noqa: S608
            "WHERE mailing_id = %s",
            [mailing.pk],
        )
        cursor.execute(
            f"UPDATE {Supporter._meta.db_table} SET status = 'subscribed', "  # noqa: S608
            "suppressed_at = NULL, suppression_reason = '' "
            f"WHERE id IN (SELECT supporter_id FROM {Delivery._meta.db_table} "
            "WHERE mailing_id = %s)",
            [mailing.pk],
        )
        ReportHour.objects.filter(mailing=mailing).delete()
        ReportBreakdown.objects.filter(mailing=mailing).delete()
    _analyze(Delivery, Supporter, TrackingEvent)


def _analyze(*models) -> None:
    """Bring the planner's statistics to where autovacuum keeps them, after bulk writes."""
    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            if not connection.in_atomic_block:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            else:
                cursor.execute(f"ANALYZE {table}")


def _delete_run(run: str) -> None:
    """Remove everything the run created, set-based (an ORM cascade over 1M rows is slow)."""
    mailing_ids = list(
        Mailing.objects.filter(campaign__slug=f"bench-{run}").values_list("pk", flat=True)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        for model, column in (
            (LinkClick, "mailing_id"),
            (Signature, "mailing_id"),
            (ReportHour, "mailing_id"),
            (ReportBreakdown, "mailing_id"),
            (Delivery, "mailing_id"),
        ):
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} WHERE {column} = ANY(%s)",  # noqa: S608
                [mailing_ids],
            )
        cursor.execute(
            f"DELETE FROM {TrackingEvent._meta.db_table} WHERE event_id LIKE %s",  # noqa: S608
            [f"bench-{run}-%"],
        )
        # Opens and clicks wrote Engagement rows (supporters/engagement_records.py).
        cursor.execute(
            f"DELETE FROM {Engagement._meta.db_table} WHERE supporter_id IN "  # noqa: S608
            f"(SELECT id FROM {Supporter._meta.db_table} WHERE email LIKE %s)",
            [f"bench-{run}-%"],
        )
        cursor.execute(
            f"DELETE FROM {Supporter._meta.db_table} WHERE email LIKE %s",  # noqa: S608
            [f"bench-{run}-%"],
        )
        Mailing.objects.filter(pk__in=mailing_ids).delete()
        Petition.objects.filter(slug=f"bench-{run}").delete()
        Campaign.objects.filter(slug=f"bench-{run}").delete()
        User.objects.filter(username=f"bench-report-{run}").delete()
