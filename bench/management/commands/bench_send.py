"""Benchmark the send queue end to end and print one JSON line.

N synthetic supporters, a realistic mailing, a fake ESP in its own process and W real Celery
worker processes; the ledger is checked against what the fake ESP received, then everything
the benchmark made is removed. Beside the rate, the CPU each process spent per message, read
from /proc (bench/proc_cpu.py).

With --baseline the same recipients are also sent the same content by a naive Django loop
(bench/naive_send.py) over SMTP, right before and right after Rally's run, and the line gives
Rally's rate as a ratio to it: absolute rates do not travel between machines, ratios measured in
one run do. The naive loop is the yardstick for both ESPs; over Postmark it sends to a fake SMTP
sink of its own.
"""

import contextlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from bench.content import HTML_BODY, SUBJECT, TEXT_BODY
from bench.naive_send import naive_send
from bench.proc_cpu import (
    CpuMeter,
    descendants,
    own_process,
    postgres_processes_of,
    redis_servers,
)
from bench.worker_processes import (
    process_tree_memory_mb,
    redis_url_with_db,
    start_celery_worker,
)
from campaigns.models import Campaign, Petition
from config.celery_app import app as celery_app
from mailings.content.senders import allowed_senders
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_send
from supporters.models import Engagement, Supporter, Tag

SAMPLE_SECONDS = 0.2
# The benchmark's own Redis database, so no other worker on this broker takes its tasks.
BENCH_REDIS_DB = 14
# The processes whose CPU per message the line gives, in its order.
CPU_GROUPS = ("worker_main", "worker_children", "esp", "postgres", "redis", "driver")


class Command(BaseCommand):
    help = "Send a synthetic mailing through real workers and a fake ESP; print one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("--recipients", type=int, default=50_000)
        # One worker whose pool has a process per core is the fastest setup on one machine.
        parser.add_argument("--workers", type=int, default=1, help="celery worker processes")
        parser.add_argument(
            "--concurrency", type=int, default=os.cpu_count() or 2, help="pool size of each"
        )
        parser.add_argument(
            "--pool",
            choices=["prefork", "threads"],
            default="prefork",
            help="Celery pool: prefork (a process per slot) or threads (one process, less memory)",
        )
        parser.add_argument("--esp", choices=["postmark", "smtp"], default="postmark")
        parser.add_argument("--batch-size", type=int, default=settings.RALLY_SEND_BATCH_SIZE)
        parser.add_argument("--timeout", type=float, default=3600)
        parser.add_argument(
            "--baseline",
            action="store_true",
            help="also run the naive Django send loop before and after, and print the ratio",
        )
        parser.add_argument(
            "--redis-db",
            type=int,
            default=BENCH_REDIS_DB,
            help="the Redis database the run uses as its broker; emptied first",
        )

    def handle(
        self,
        *args,
        recipients,
        workers,
        concurrency,
        pool,
        esp,
        batch_size,
        timeout,
        baseline,
        redis_db,
        **options,
    ):
        if recipients < 1:
            raise CommandError("--recipients must be at least 1.")
        from espfakes import FakePostmark, FakeSMTP  # Development dependencies.

        redis_url = redis_url_with_db(settings.REDIS_URL, redis_db)
        redis_client = redis.Redis.from_url(redis_url)
        redis_client.flushdb()
        # Tasks this process queues (the snapshot) go to the benchmark's broker database.
        celery_app.conf.broker_url = redis_url

        run = uuid.uuid4().hex[:8]
        self.stderr.write(f"Creating {recipients:,} supporters (run {run})…")
        tag, mailing = _create_audience_and_mailing(run, recipients)
        fake = (FakePostmark if esp == "postmark" else FakeSMTP)(record_bodies=False)
        # The naive loop sends over SMTP whatever the ESP: to Rally's sink, or one of its own.
        naive_sink = None
        if baseline:
            naive_sink = fake if esp == "smtp" else FakeSMTP(record_bodies=False)
        processes = []
        naive_runs = []
        try:
            own_sink = naive_sink if naive_sink not in (None, fake) else contextlib.nullcontext()
            with fake, own_sink, tempfile.TemporaryDirectory() as logs:
                env = {
                    # Workers as deployed: with DEBUG on, Django keeps the SQL of the last 9,000
                    # queries of every connection (megabytes of VALUES lists) and formats each.
                    "DJANGO_DEBUG": "false",
                    "REDIS_URL": redis_url,
                    "RALLY_SEND_BATCH_SIZE": str(batch_size),
                    "RALLY_SEND_PARALLELISM": str(max(8, workers * concurrency * 2)),
                    **_esp_env(esp, fake),
                }
                for number in range(workers):
                    processes.append(
                        start_celery_worker(
                            name=f"bench{number}-{run}",
                            env=env,
                            log_path=Path(logs) / f"worker{number}.log",
                            concurrency=concurrency,
                            pool=pool,
                        )
                    )
                _wait_until_ready(redis_client, processes)
                if naive_sink:
                    naive_runs.append(self._naive_run(mailing, tag, naive_sink, recipients))
                    fake.reset()
                load_before = os.getloadavg()[0]
                result = self._send_and_measure(mailing, fake, processes, redis_client, timeout)
                result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                counts = fake.counts()
                if naive_sink:
                    naive_sink.reset()
                    naive_runs.append(self._naive_run(mailing, tag, naive_sink, recipients))
        finally:
            for process in processes:
                process.stop()
            ledger = mailing_delivery_counts(mailing)
            self.stderr.write("Cleaning up…")
            _delete_run(run, tag, mailing)
        delivered = len(counts)
        result.update(
            {
                "recipients": recipients,
                "delivered": delivered,
                "duplicates": sum(n - 1 for n in counts.values() if n > 1),
                "missing": recipients - delivered,
                "ledger_sent": ledger["sent"],
                "esp": esp,
                "workers": workers,
                "concurrency": concurrency,
                "pool": pool,
                "batch_size": batch_size,
                "database": connection.vendor,
            }
        )
        keys = ["recipients", "delivered", "duplicates", "missing", "seconds", "emails_per_s",
                "snapshot_seconds", "first_message_seconds", "worker_peak_rss_mb",
                "worker_peak_pss_mb", "redis_peak_mb", "esp", "ledger_sent", "workers",
                "concurrency", "pool", "batch_size", "database", "cpu_ms_per_message",
                "esp_cpu_share_of_worker", "load_average"]  # fmt: skip
        line = {key: result[key] for key in keys}
        if naive_runs:
            line.update(_naive_summary(naive_runs, result["emails_per_s"]))
        self.stdout.write(json.dumps(line))

    def _naive_run(self, mailing, tag, sink, recipients: int) -> dict:
        """Send the mailing to the run's supporters with the naive loop; measure it as Rally's."""
        self.stderr.write("Sending with the naive loop…")
        meter = CpuMeter(
            {
                "esp": lambda: [sink.pid],
                "postgres": _database_processes,
                "redis": redis_servers,
                "driver": own_process,
            }
        )
        load_before = os.getloadavg()[0]
        meter.start()
        started = time.monotonic()
        # As a Django app reads its audience: a queryset, model instances, in chunks.
        supporters = Supporter.objects.filter(tags=tag).order_by("pk").iterator(chunk_size=2000)
        sent = naive_send(mailing=mailing, supporters=supporters, host=sink.host, port=sink.port)
        seconds = time.monotonic() - started
        cpu = meter.stop()
        counts = sink.counts()
        return {
            "sent": sent,
            "seconds": seconds,
            "cpu": cpu,
            "duplicates": sum(n - 1 for n in counts.values() if n > 1),
            "missing": recipients - len(counts),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }

    def _send_and_measure(self, mailing, fake, processes, redis_client, timeout) -> dict:
        pids = [process.process.pid for process in processes]
        meter = CpuMeter(
            {
                "worker_main": lambda: pids,
                "worker_children": lambda: descendants(pids) - set(pids),
                "esp": lambda: [fake.pid],
                "postgres": _database_processes,
                "redis": redis_servers,
                "driver": own_process,
            }
        )
        peak_rss, peak_pss = process_tree_memory_mb(pids)
        peak_redis = redis_client.info("memory")["used_memory"]
        meter.start()
        started = time.monotonic()
        started_wall = time.time()
        mailing_send(mailing=mailing)
        first_message_at = None
        while True:
            rss, pss = process_tree_memory_mb(pids)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            peak_redis = max(peak_redis, redis_client.info("memory")["used_memory"])
            if first_message_at is None and fake.stats()["accepted"]:
                first_message_at = fake.messages(limit=1)[0]["accepted_at"]
            status = Mailing.objects.filter(pk=mailing.pk).values_list("status", flat=True)[0]
            if status != Mailing.Status.SENDING:
                break
            if time.monotonic() - started > timeout:
                raise CommandError(
                    f"Not finished after {timeout}s: {mailing_delivery_counts(mailing)}"
                )
            for process in processes:
                if process.process.poll() is not None:
                    raise CommandError(f"A worker died:\n{process.log()[-3000:]}")
            # Pool children and database backends may come and go: each counts until it went.
            meter.sample()
            time.sleep(SAMPLE_SECONDS)
        seconds = time.monotonic() - started
        cpu = meter.stop()
        mailing.refresh_from_db()
        if mailing.status != Mailing.Status.SENT:
            raise CommandError(f"The mailing ended {mailing.status}: {mailing.status_reason}")
        snapshot_seconds = (mailing.audience_snapshot_at - mailing.started_at).total_seconds()
        count = Delivery.objects.filter(mailing=mailing).count()
        cpu_ms = _per_message_ms(cpu, count)
        worker_ms = cpu_ms["worker_main"] + cpu_ms["worker_children"]
        return {
            "cpu_ms_per_message": cpu_ms,
            "esp_cpu_share_of_worker": round(cpu_ms["esp"] / worker_ms, 3) if worker_ms else None,
            "seconds": round(seconds, 2),
            "emails_per_s": round(count / seconds, 1),
            "snapshot_seconds": round(snapshot_seconds, 2),
            "first_message_seconds": round((first_message_at or time.time()) - started_wall, 2),
            "worker_peak_rss_mb": round(peak_rss, 1),
            "worker_peak_pss_mb": round(peak_pss, 1),
            "redis_peak_mb": round(peak_redis / 2**20, 2),
        }


def _per_message_ms(cpu_seconds: dict[str, float], messages: int) -> dict[str, float]:
    """Return each process group's CPU milliseconds per message, in CPU_GROUPS' order."""
    return {
        name: round(cpu_seconds[name] * 1000 / max(messages, 1), 4)
        for name in CPU_GROUPS
        if name in cpu_seconds
    }


def _naive_summary(runs: list[dict], emails_per_s: float) -> dict:
    """Return the naive loop's keys: each run's rate and their mean, CPU over both, the ratio."""
    rates = [run["sent"] / run["seconds"] for run in runs]
    mean = sum(rates) / len(rates)
    cpu = {name: sum(run["cpu"][name] for run in runs) for name in runs[0]["cpu"]}
    return {
        "naive_emails_per_s": round(mean, 1),
        "naive_emails_per_s_before": round(rates[0], 1),
        "naive_emails_per_s_after": round(rates[-1], 1),
        "ratio_to_naive": round(emails_per_s / mean, 2),
        "naive_cpu_ms_per_message": _per_message_ms(cpu, sum(run["sent"] for run in runs)),
        "naive_duplicates": sum(run["duplicates"] for run in runs),
        "naive_missing": sum(run["missing"] for run in runs),
        "naive_load_average": [run["load_average"] for run in runs],
    }


def _database_processes() -> set[int]:
    """The PostgreSQL sessions of the benchmark's database (none on SQLite)."""
    if connection.vendor != "postgresql":
        return set()
    return postgres_processes_of(connection.settings_dict["NAME"])


def _esp_env(esp: str, fake) -> dict[str, str]:
    if esp == "postmark":
        return {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL": json.dumps(fake.anymail_settings()),
        }
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": fake.host,
        "EMAIL_PORT": str(fake.port),
    }


def _wait_until_ready(redis_client, processes, timeout: float = 60) -> None:
    """Wait until every worker has said it is ready (so start-up is not timed as sending)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(" ready." in process.log() for process in processes):
            return
        time.sleep(0.1)
    raise CommandError("Workers did not start:\n" + processes[0].log()[-3000:])


def _create_audience_and_mailing(run: str, recipients: int) -> tuple[Tag, Mailing]:
    """Create N supporters tagged for this run, and a mailing to exactly them."""
    tag = Tag.objects.create(name=f"bench-{run}")
    supporter_table = Supporter._meta.db_table
    tag_table = Supporter.tags.through._meta.db_table
    email_pattern = f"bench-{run}-%@example.invalid"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""
                INSERT INTO {supporter_table} (email, first_name, last_name, country, postcode,
                    language, status, source, created_at, updated_at)
                SELECT 'bench-' || %s || '-' || n || '@example.invalid', 'First' || n,
                    'Last' || n, 'GB', '', 'en', 'subscribed', 'bench', now(), now()
                FROM generate_series(1, %s) AS n
                """,  # noqa: S608 -- table names from the models
                [run, recipients],
            )
        else:
            chunk = 10_000
            for start in range(1, recipients + 1, chunk):
                Supporter.objects.bulk_create(
                    [
                        Supporter(
                            email=f"bench-{run}-{n}@example.invalid",
                            first_name=f"First{n}",
                            last_name=f"Last{n}",
                            country="GB",
                            source="bench",
                        )
                        for n in range(start, min(start + chunk, recipients + 1))
                    ]
                )
        cursor.execute(
            f"INSERT INTO {tag_table} (supporter_id, tag_id) "  # noqa: S608
            f"SELECT id, %s FROM {supporter_table} WHERE email LIKE %s",
            [tag.pk, email_pattern],
        )
    campaign = Campaign.objects.create(name=f"Benchmark {run}", slug=f"bench-{run}")
    petition = Petition.objects.create(
        campaign=campaign, slug=f"bench-{run}", title="Free the marchers", body="<p>Now.</p>",
        target="The authorities",
    )  # fmt: skip
    # A sender a campaigner could choose: the first of RALLY_SENDERS.
    sender = allowed_senders()[0]
    mailing = Mailing.objects.create(
        campaign=campaign,
        petition=petition,
        name=f"Benchmark {run}",
        subject=SUBJECT,
        preheader="Hundreds detained for marching peacefully. Add your name.",
        from_name=sender.name,
        from_email=sender.email,
        reply_to=sender.reply_to,
        html_body=HTML_BODY,
        text_body=TEXT_BODY,
    )
    mailing.audience_include_tags.add(tag)
    return tag, mailing


_OF_RUN_SUPPORTERS = (
    f"supporter_id IN (SELECT id FROM {Supporter._meta.db_table} WHERE email LIKE %s)"  # noqa: S608
)


def _delete_run(run: str, tag: Tag, mailing: Mailing) -> None:
    """Remove everything the run created, set-based (an ORM cascade of 1M rows is slow)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table, condition, value in (
            (Delivery._meta.db_table, "mailing_id = %s", mailing.pk),
            (Supporter.tags.through._meta.db_table, "tag_id = %s", tag.pk),
            # Sending wrote an Engagement row per recipient (supporters/engagement_records.py).
            (Engagement._meta.db_table, _OF_RUN_SUPPORTERS, f"bench-{run}-%@example.invalid"),
            (Supporter._meta.db_table, "email LIKE %s", f"bench-{run}-%@example.invalid"),
        ):
            cursor.execute(f"DELETE FROM {table} WHERE {condition}", [value])  # noqa: S608
        campaign = mailing.campaign
        mailing.delete()
        Petition.objects.filter(campaign=campaign).delete()
        campaign.delete()
        tag.delete()
