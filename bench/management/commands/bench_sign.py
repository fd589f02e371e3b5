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
import tempfile
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bench.preconditions import require_migrated, require_postgresql, require_wrk
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
            page, signing = self._measure(
                petition, run=run, redis_url=redis_url, wrk=wrk, synthetic=synthetic, **options
            )
            # The petition had no signatures before the run (see _delete_signatures).
            signatures_in_db = Signature.objects.filter(petition=petition).count()
        finally:
            self.stderr.write("Cleaning up…")
            _delete_signatures(petition)
            redis_client.flushdb()

        result = summarise(signing, page, signatures_in_db=signatures_in_db)
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
    ) -> tuple[dict | None, dict]:
        """Start the web server, load the petition page, sign it; return both wrk summaries."""
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
        return page, signing


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
