"""Benchmark signing a petition over real HTTP and print one JSON line.

The web server (granian, as deployed; or gunicorn to compare) serves the production settings
against this PostgreSQL database, with --supporters synthetic supporters in the table. wrk
(bench/sign.lua) first loads the petition page, then posts N valid signatures by distinct
signers as a browser would (the CSRF cookie and the form's token, Origin and Referer); with
--returning, that share of them are supporters already. Afterwards the rows are counted: a
signature that was answered with the thank-you redirect but is not in the table is lost. What
signing made is deleted at the end; the synthetic supporters stay for the next run, since
creating 2M takes a while.
"""

import json
import os
import resource
import tempfile
import threading
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench.preconditions import require_migrated, require_postgresql, require_wrk
from bench.proc_cpu import CpuMeter, descendants, postgres_processes_of, redis_servers
from bench.synthetic import SYNTHETIC_PREFIX, synthetic_supporters_ensure
from bench.web_server import (
    SERVERS,
    WebServer,
    fetch_csrf,
    server_options_settle,
)
from bench.worker_processes import redis_url_with_db
from bench.wrk import run_wrk, summarise
from campaigns.models import Campaign, Petition, Signature
from supporters.models import ConsentRecord, Supporter

PETITION_SLUG = "bench-sign"
CAMPAIGN_SLUG = "bench"
DELETE_CHUNK = 5_000
# The benchmark server's own Redis database (counts, rate-limit keys, queued tasks), emptied
# before and after, so nothing it leaves reaches a real worker. bench_send uses 14.
BENCH_REDIS_DB = 13
# How often the CPU meter looks at the processes while wrk signs: a PostgreSQL backend that
# closes in between is counted with what it had spent at the last look.
CPU_SAMPLE_SECONDS = 1.0
# Cores of the machine the benchmark server shares with PostgreSQL and wrk.
CORES = os.cpu_count() or 2
PETITION_BODY = "".join(
    f"<p>{paragraph}</p>"
    for paragraph in (
        "Peaceful protesters were detained in their hundreds this weekend, and the people who "
        "organised the marches now face charges that could keep them in prison for years.",
        "Their families have not been told where some of them are held. Lawyers have been "
        "turned away at the doors of police stations, and hearings take place behind closed "
        "doors, without the press.",
        "International attention is the one thing that has made a difference in cases like "
        "these before. Every name on this petition is a reason for officials to think twice.",
        "We will deliver the signatures to the embassy in person, and publish the number every "
        "week until every detained protester is released.",
    )
)


class Command(BaseCommand):
    help = "Sign a petition N times through a web server with wrk; print one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=20_000, help="signatures to post")
        parser.add_argument("--concurrency", type=int, default=50, help="open connections")
        parser.add_argument(
            "--supporters", type=int, default=2_000_000, help="synthetic supporters in the table"
        )
        parser.add_argument(
            "--returning",
            type=float,
            default=0.0,
            help="share of signers who are already supporters (0…1), as after a mailing",
        )
        parser.add_argument(
            "--get-requests", type=int, default=2_000, help="petition page loads before signing"
        )
        # Threads matter: concurrent signatures in one process share a transaction
        # (config/lib/group_commit.py), where one-request-at-a-time workers write one
        # each. granian is the default because it is what the Dockerfile runs and it signed and
        # served the page fastest, with a worker per core × 16 threads; gunicorn (gthread or
        # sync) stays to compare against (figures: docs/performance.md).
        parser.add_argument("--server", choices=SERVERS, default="granian")
        parser.add_argument(
            "--worker-class", choices=["sync", "gthread"], default="gthread", help="gunicorn's"
        )
        parser.add_argument(
            "--workers", "--gunicorn-workers", type=int, default=None, help="default: cores"
        )
        parser.add_argument(
            "--threads", type=int, default=16, help="per worker (gunicorn: gthread only)"
        )
        parser.add_argument(
            "--timeout", type=float, default=7200, help="seconds each wrk run may take"
        )

    def handle(self, *args, **options):
        concurrency = options["concurrency"]
        server_options_settle(options, cores=CORES)
        require_postgresql("bench_sign")
        if options["requests"] < 1 or concurrency < 1:
            raise CommandError("--requests and --concurrency must be at least 1.")
        wrk = require_wrk()
        require_migrated()

        if not 0 <= options["returning"] <= 1:
            raise CommandError("--returning is a share between 0 and 1.")

        synthetic = synthetic_supporters_ensure(options["supporters"], log=self.stderr.write)
        if options["returning"] and options["requests"] + concurrency > synthetic:
            raise CommandError("Returning signers need more synthetic supporters than requests.")
        petition = _ensure_petition()
        stale = _delete_signatures(petition)
        if stale:
            self.stderr.write(f"Deleted {stale:,} signatures left by an interrupted run.")
        supporters_in_db = Supporter.objects.count()
        redis_url = redis_url_with_db(settings.REDIS_URL, BENCH_REDIS_DB)
        redis_client = redis.Redis.from_url(redis_url)
        redis_client.flushdb()

        run = uuid.uuid4().hex[:8]
        try:
            page, signing, cpu = self._measure(
                petition, run=run, redis_url=redis_url, wrk=wrk, synthetic=synthetic, **options
            )
            # The petition had no signatures before the run (see _delete_signatures).
            signatures_in_db = Signature.objects.filter(petition=petition).count()
        finally:
            self.stderr.write("Cleaning up…")
            _delete_signatures(petition)
            redis_client.flushdb()

        result = summarise(signing, page, signatures_in_db=signatures_in_db)
        result.update(_cpu_per_signature(cpu, signatures_in_db))
        result.update(
            {
                "concurrency": concurrency,
                "server": options["server"],
                "workers": options["workers"],
                "worker_class": options["worker_class"],
                "threads": options["threads"],
                "returning": options["returning"],
                "supporters_in_db": supporters_in_db,
            }
        )
        self.stdout.write(json.dumps(result))

    def _measure(
        self, petition, *, run, redis_url, wrk, synthetic, **options
    ) -> tuple[dict | None, dict, dict[str, float]]:
        """Start the web server, load the petition page, sign it; return both wrk summaries and
        the CPU seconds each group of processes spent while wrk signed."""
        concurrency, timeout = options["concurrency"], options["timeout"]
        with tempfile.TemporaryDirectory() as logs:
            server = WebServer(
                server=options["server"],
                worker_class=options["worker_class"],
                workers=options["workers"],
                threads=options["threads"],
                redis_url=redis_url,
                log_path=Path(logs) / "server.log",
            )
            try:
                url = server.start()
                page_url = f"{url}{petition.get_absolute_url()}"
                layout = " ".join(
                    filter(None, [str(options["workers"]), options["worker_class"], "workers"])
                )
                self.stderr.write(
                    f"{options['server']} at {url}: {layout}"
                    + (f" × {options['threads']} threads" if options["threads"] > 1 else "")
                )
                page = None
                if options["get_requests"]:
                    self.stderr.write(
                        f"Loading the petition page {options['get_requests']:,} times…"
                    )
                    page = run_wrk(
                        wrk,
                        page_url,
                        mode="get",
                        requests=options["get_requests"],
                        concurrency=concurrency,
                        timeout=timeout,
                    )
                cookie, token = fetch_csrf(page_url)
                self.stderr.write(
                    f"Signing {options['requests']:,} times at concurrency {concurrency} "
                    f"(run {run})…"
                )
                meter = _signing_cpu_meter(server.process.pid)
                with _metered(meter) as cpu:
                    signing = run_wrk(
                        wrk,
                        page_url,
                        mode="post",
                        requests=options["requests"],
                        concurrency=concurrency,
                        timeout=timeout,
                        run=run,
                        csrf_cookie=cookie,
                        csrf_token=token,
                        returning=options["returning"],
                        supporters=synthetic,
                    )
            finally:
                server.stop()
        return page, signing, cpu


def _signing_cpu_meter(server_pid: int) -> CpuMeter:
    """Meter the web server (its master and workers) and this database's PostgreSQL backends.

    Only the backends connected to the benchmark's database count: other databases on the same
    server (a test run, another benchmark) are not signing's cost. PostgreSQL's shared
    background processes (WAL writer, checkpointer) are left out for the same reason. Redis is
    one server for every database, so its figure holds whatever else used it meanwhile.
    """
    database = connection.settings_dict["NAME"]
    return CpuMeter(
        groups={
            "web": lambda: descendants([server_pid]),
            "postgres": lambda: postgres_processes_of(database),
            "redis": redis_servers,
        }
    )


class _metered:
    """Meter CPU while the block runs: the groups by /proc, the load generator (wrk, a child
    this process waits for inside the block) by this process' children's usage."""

    def __init__(self, meter: CpuMeter):
        self.meter = meter
        self.cpu: dict[str, float] = {}
        self._done = threading.Event()

    def _sample_until_done(self) -> None:
        while not self._done.wait(CPU_SAMPLE_SECONDS):
            self.meter.sample()

    def __enter__(self) -> dict[str, float]:
        self._children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.meter.start()
        self._sampler = threading.Thread(target=self._sample_until_done, daemon=True)
        self._sampler.start()
        return self.cpu

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._sampler.join()
        self.cpu.update(self.meter.stop())
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu["load_generator"] = round(
            children.ru_utime
            + children.ru_stime
            - self._children.ru_utime
            - self._children.ru_stime,
            3,
        )


def _cpu_per_signature(cpu: dict[str, float], signatures: int) -> dict[str, float | None]:
    """CPU milliseconds per durable signature (one in the table) for each metered group."""
    return {
        f"{group}_cpu_ms_per_signature": (
            round(seconds * 1000 / signatures, 3) if signatures else None
        )
        for group, seconds in cpu.items()
    }


def _ensure_petition() -> Petition:
    """Return the open benchmark petition, signed without email confirmation."""
    campaign, _ = Campaign.objects.get_or_create(slug=CAMPAIGN_SLUG, defaults={"name": "Benchmark"})
    petition, created = Petition.objects.get_or_create(
        slug=PETITION_SLUG,
        defaults={
            "campaign": campaign,
            "title": "Release the peaceful protesters",
            "body": PETITION_BODY,
            "target": "The Minister of the Interior",
            "language": "en",
            "is_open": True,
            "requires_confirmation": False,
        },
    )
    if not created and (not petition.is_open or petition.requires_confirmation):
        petition.is_open, petition.requires_confirmation = True, False
        petition.save(update_fields=["is_open", "requires_confirmation"])
    return petition


def _delete_signatures(petition: Petition) -> int:
    """Delete what signing the benchmark petition made; return how many signatures it had.

    New signers go with their consent records and signatures. Synthetic supporters who signed
    stay, minus their signature and the consent records signing gave them (they had none).
    """
    signer_ids = list(
        Supporter.objects.filter(signatures__petition=petition).values_list("pk", flat=True)
    )
    for start in range(0, len(signer_ids), DELETE_CHUNK):
        chunk = signer_ids[start : start + DELETE_CHUNK]
        ConsentRecord.objects.filter(supporter_id__in=chunk).delete()
        Supporter.objects.filter(pk__in=chunk).exclude(email__startswith=SYNTHETIC_PREFIX).delete()
    Signature.objects.filter(petition=petition).delete()
    return len(signer_ids)
