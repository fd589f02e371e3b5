"""Benchmark the OSDI API over real HTTP with 2M supporters; print one JSON line.

Over the synthetic supporters that bench_sign makes (2M by default), engagement rows for a
share of them (--engaged, made set-based in SQL: last engaged from today to well over a year
ago, up to two dozen mailings since), so that a segment's tier conditions meet a table of the
size a real list has. Then, through the web server as deployed (granian, production settings)
and wrk (bench/api.lua), with a write-scope token:

- the yardstick: GET the API's entry point, which reads nothing but the token (cached in the
  process): what any call costs before it does its own work, measured in the same run;
- GET a page of people at per_page=25 and at the largest page size, as an integrator's sync
  reads them: each connection starts at a page of its own, spread over the whole list, and
  follows `_links.next` from there;
- GET pages of people by number, spread over the whole list (a tenth as many requests): what a
  client that computes page numbers itself pays;
- POST new people to the person signup helper at --concurrency (20 by default).

And in this process, the count of two saved segments over engagement conditions (dormant;
lapsing), as the API's queries and the admin answer it (mailings.segments.segment_count),
timed --repeat times after one untimed run. p95 by nearest rank everywhere. Everything the run
made is removed at the end; the synthetic supporters stay for the next run.
"""

import json
import math
import os
import tempfile
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from api.models import ApiAuditEntry, ApiToken
from api.services.tokens import api_token_create
from bench.preconditions import require_migrated, require_postgresql, require_wrk
from bench.synthetic import SYNTHETIC_PREFIX, synthetic_supporters_ensure
from bench.web_server import SERVERS, WebServer, server_options_settle
from bench.worker_processes import redis_url_with_db
from bench.wrk import run_wrk
from mailings.segments import segment_count
from supporters.models import Engagement, Segment, SegmentCondition, Supporter, Tag

LUA_SCRIPT = Path(__file__).resolve().parents[2] / "api.lua"
API_ROOT = "/api/osdi/v1/"
RUN_NAME = "bench-api"
# The benchmark's own Redis database (the API's rate-limit counters), emptied before and after.
# bench_sign uses 13, bench_send 14, bench_webhooks 12.
BENCH_REDIS_DB = 11
CORES = os.cpu_count() or 2
# The goals the issue sets (ms, requests/s), printed beside what was measured.
GOAL_PAGE_P95_MS = 300
GOAL_SIGNUP_PER_S = 300
GOAL_SEGMENT_P95_MS = 500
SEGMENTS = {
    f"{RUN_NAME} dormant": SegmentCondition.Tier.DORMANT,
    f"{RUN_NAME} lapsing": SegmentCondition.Tier.LAPSING,
}


class Command(BaseCommand):
    help = "Time the OSDI API's people pages, signup helper and segment counts; one JSON line."

    def add_arguments(self, parser):
        parser.add_argument(
            "--supporters", type=int, default=2_000_000, help="synthetic supporters in the table"
        )
        parser.add_argument(
            "--engaged",
            type=float,
            default=0.6,
            help="share (0…1) of the synthetic supporters with an engagement row",
        )
        parser.add_argument("--requests", type=int, default=2000, help="GETs per page size")
        parser.add_argument("--signups", type=int, default=6000, help="signup helper POSTs")
        parser.add_argument("--concurrency", type=int, default=20, help="signup connections")
        parser.add_argument(
            "--get-concurrency", type=int, default=CORES * 2, help="GET connections"
        )
        parser.add_argument("--repeat", type=int, default=20, help="timed segment counts")
        parser.add_argument("--server", choices=SERVERS, default="granian")
        parser.add_argument(
            "--worker-class", choices=["sync", "gthread"], default="gthread", help="gunicorn's"
        )
        parser.add_argument("--workers", type=int, default=None, help="default: cores")
        parser.add_argument("--threads", type=int, default=16, help="per web worker")
        parser.add_argument("--timeout", type=float, default=1800, help="seconds per phase")

    def handle(self, *args, **options):
        server_options_settle(options, cores=CORES)
        require_postgresql("bench_api")
        for name in ("supporters", "requests", "signups", "concurrency", "get_concurrency"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["repeat"] < 1:
            raise CommandError("--repeat must be at least 1.")
        if not 0 <= options["engaged"] <= 1:
            raise CommandError("--engaged is a share between 0 and 1.")
        wrk = require_wrk()
        require_migrated()

        run = uuid.uuid4().hex[:8]
        redis_url = redis_url_with_db(settings.REDIS_URL, BENCH_REDIS_DB)
        redis_client = redis.Redis.from_url(redis_url)
        redis_client.flushdb()
        synthetic_supporters_ensure(options["supporters"], log=self.stderr.write)
        _delete_run()
        try:
            self.stderr.write(f"Engagement rows for {options['engaged']:.0%} of them…")
            engaged = _engagement_create(options["engaged"])
            segments = _segments_create()
            _analyze()
            counts = self._time_segments(segments, repeat=options["repeat"])
            issued = api_token_create(name=f"{RUN_NAME}-{run}", scope=ApiToken.Scope.WRITE)
            with tempfile.TemporaryDirectory() as logs:
                calls = self._call(run, issued.secret, wrk=wrk, redis_url=redis_url,
                                   logs=Path(logs), **options)  # fmt: skip
            supporters = Supporter.objects.count()
        finally:
            self.stderr.write("Cleaning up…")
            _delete_run()
            redis_client.flushdb()

        entry, page, page_max, signup = (
            calls["entry"], calls["page"], calls["page_max"], calls["signup"]
        )  # fmt: skip
        segment_p95 = max(count["p95_ms"] for count in counts.values())
        result = {
            "supporters": supporters,
            "engaged": engaged,
            "people_page_p95_ms": page["p95_ms"],
            "people_page_p50_ms": page["p50_ms"],
            "people_page_max_size": calls["max_page_size"],
            "people_page_max_size_p95_ms": page_max["p95_ms"],
            "people_page_max_size_p50_ms": page_max["p50_ms"],
            "people_pages": calls["pages"],
            "people_page_by_number_p95_ms": calls["page_by_number"]["p95_ms"],
            "people_page_by_number_p50_ms": calls["page_by_number"]["p50_ms"],
            "signup_req_per_s": signup["req_per_s"],
            "signup_p95_ms": signup["p95_ms"],
            "signup_ok": signup["ok"],
            "signup_errors": signup["errors"],
            "segment_count_p95_ms": segment_p95,
            "segments": counts,
            "yardstick_entry_p95_ms": entry["p95_ms"],
            "yardstick_entry_p50_ms": entry["p50_ms"],
            "yardstick_entry_req_per_s": entry["req_per_s"],
            "ratio_people_page_p95_to_entry": _ratio(page["p95_ms"], entry["p95_ms"]),
            "ratio_people_page_max_size_p95_to_entry": _ratio(page_max["p95_ms"], entry["p95_ms"]),
            "ratio_signup_to_entry_req_per_s": _ratio(signup["req_per_s"], entry["req_per_s"]),
            "goals_met": {
                "people_page_p95": page["p95_ms"] is not None
                and page["p95_ms"] <= GOAL_PAGE_P95_MS,
                "people_page_max_size_p95": page_max["p95_ms"] is not None
                and page_max["p95_ms"] <= GOAL_PAGE_P95_MS,
                "signup_req_per_s": signup["req_per_s"] >= GOAL_SIGNUP_PER_S,
                "segment_count_p95": segment_p95 <= GOAL_SEGMENT_P95_MS,
            },
            "errors": sum(
                calls[phase]["errors"]
                for phase in ("entry", "page", "page_max", "page_by_number", "signup")
            ),
            "requests": options["requests"],
            "signups": options["signups"],
            "concurrency": options["concurrency"],
            "get_concurrency": options["get_concurrency"],
            "server": options["server"],
            "workers": options["workers"],
            "threads": options["threads"],
            "database": connection.vendor,
        }
        self.stdout.write(json.dumps(result))

    def _time_segments(self, segments: list[Segment], *, repeat: int) -> dict:
        """Count each segment once untimed (plans made, caches warm), then `repeat` times."""
        counts = {}
        for segment in segments:
            segment_count(segment)
            self.stderr.write(f"Counting “{segment.name}” {repeat} times…")
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                count = segment_count(segment)
                samples.append((time.perf_counter() - started) * 1000)
            counts[segment.name.removeprefix(f"{RUN_NAME} ")] = {
                "count": count,
                "p50_ms": _percentile(samples, 50),
                "p95_ms": _percentile(samples, 95),
            }
        return counts

    def _call(self, run: str, token: str, *, wrk: str, redis_url: str, logs: Path, **options):
        """Start the web server and drive each phase through it with wrk."""
        max_page_size = settings.RALLY_API_MAX_PAGE_SIZE
        listed = Supporter.objects.exclude(status=Supporter.Status.ERASED).count()
        server = WebServer(
            server=options["server"],
            worker_class=options["worker_class"],
            workers=options["workers"],
            threads=options["threads"],
            redis_url=redis_url,
            log_path=logs / "server.log",
            # The benchmark makes thousands of calls a minute with one token.
            extra_env={"RALLY_API_RATE_LIMIT_PER_MINUTE": "100000000"},
        )
        try:
            url = server.start()
            self.stderr.write(
                f"{options['server']} at {url}: {options['workers']} workers × "
                f"{options['threads']} threads."
            )

            def phase(label, path, *, mode="get", requests, concurrency, pages=0):
                self.stderr.write(f"{label}: {requests:,} requests at concurrency {concurrency}…")
                summary = run_wrk(
                    wrk, url + path, mode=mode, requests=requests, concurrency=concurrency,
                    timeout=options["timeout"], run=run, script=LUA_SCRIPT,
                    extra_env={"BENCH_TOKEN": token, "BENCH_PAGES": str(pages)},
                )  # fmt: skip
                result = _summary(summary)
                if result["ok"] == 0:
                    raise CommandError(f"{label}: no request succeeded:\n{server.log()[-3000:]}")
                return result

            gets = options["requests"]
            get_concurrency = options["get_concurrency"]
            entry = phase("Entry point", API_ROOT, requests=gets, concurrency=get_concurrency)
            pages = max(1, math.ceil(listed / 25))
            page = phase(
                "People, 25 a page, following next", f"{API_ROOT}people?per_page=25",
                mode="walk", requests=gets, concurrency=get_concurrency, pages=pages,
            )  # fmt: skip
            page_max = phase(
                f"People, {max_page_size} a page, following next",
                f"{API_ROOT}people?per_page={max_page_size}",
                mode="walk", requests=gets, concurrency=get_concurrency,
                pages=max(1, math.ceil(listed / max_page_size)),
            )  # fmt: skip
            page_by_number = phase(
                "People, 25 a page, by page number", f"{API_ROOT}people?per_page=25",
                requests=max(get_concurrency, gets // 10), concurrency=get_concurrency,
                pages=pages,
            )  # fmt: skip
            signup = phase(
                "Person signup helper", f"{API_ROOT}people", mode="signup",
                requests=options["signups"], concurrency=options["concurrency"],
            )  # fmt: skip
        finally:
            server.stop()
        return {
            "entry": entry,
            "page": page,
            "page_max": page_max,
            "page_by_number": page_by_number,
            "signup": signup,
            "pages": pages,
            "max_page_size": max_page_size,
        }


def _summary(wrk_summary: dict) -> dict:
    latency = wrk_summary.get("latency_us", {})
    seconds = wrk_summary["seconds"]
    return {
        "ok": wrk_summary["ok"],
        "errors": wrk_summary["requests"] - wrk_summary["ok"],
        "req_per_s": round(wrk_summary["answered"] / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": _ms(latency.get("p50")),
        "p95_ms": _ms(latency.get("p95")),
    }


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else round(microseconds / 1000, 2)


def _ratio(measured: float | None, yardstick: float | None) -> float | None:
    if not measured or not yardstick:
        return None
    return round(measured / yardstick, 2)


def _percentile(samples: list[float], percent: int) -> float:
    """Return the nearest-rank percentile: a time that was measured, not an interpolation."""
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)], 2)


def _engagement_create(share: float) -> int:
    """Give a share of the synthetic supporters an engagement row, set-based; return how many.

    Spread by a hash of the id, as real engagement is spread over a list: last engaged from
    today to 540 days ago, last mailed within the month, and 0 to 23 mailings since (so each
    tier holds a good part of the rows). Only supporters without a row get one.
    """
    engagement = Engagement._meta.db_table
    supporters = Supporter._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {engagement} (supporter_id, last_mailed_at, last_opened_at,
                last_clicked_at, last_acted_at, last_engaged_at, mailings_since_engaged)
            SELECT id,
                now() - ((id * 11) %% 30) * interval '1 day',
                CASE WHEN id %% 3 = 0 THEN now() - ((id * 37) %% 540) * interval '1 day' END,
                NULL, NULL,
                now() - ((id * 37) %% 540) * interval '1 day',
                (id * 13) %% 24
            FROM {supporters}
            WHERE email LIKE %s AND (id * 7919) %% 1000 < %s
            ON CONFLICT (supporter_id) DO NOTHING
            """,  # noqa: S608 -- table names from the models
            [f"{SYNTHETIC_PREFIX}%", round(share * 1000)],
        )
        return cursor.rowcount


def _segments_create() -> list[Segment]:
    segments = []
    for name, tier in SEGMENTS.items():
        segment = Segment.objects.create(name=name, description="Made by bench_api.")
        SegmentCondition.objects.create(
            segment=segment, kind=SegmentCondition.Kind.ENGAGEMENT_TIER, tier=tier
        )
        segments.append(segment)
    return segments


def _analyze() -> None:
    """Bring the planner's statistics and the visibility map to where autovacuum keeps them."""
    with connection.cursor() as cursor:
        for model in (Supporter, Engagement):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")


def _delete_run() -> None:
    """Remove what a run made: its people, the engagement rows, the segments, the token.

    The people the signup helper made go through the ORM, which finds every row that points at
    them (a few thousand); the engagement rows of the synthetic supporters, which bench_api
    alone makes, go set-based.
    """
    with transaction.atomic():
        Supporter.objects.filter(email__startswith=f"{RUN_NAME}-").delete()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                DELETE FROM {Engagement._meta.db_table} WHERE supporter_id IN (
                    SELECT id FROM {Supporter._meta.db_table} WHERE email LIKE %s)
                """,  # noqa: S608 -- table names from the models
                [f"{SYNTHETIC_PREFIX}%"],
            )
        Segment.objects.filter(name__startswith=f"{RUN_NAME} ").delete()
        Tag.objects.filter(name__startswith=f"{RUN_NAME}-").delete()
        ApiAuditEntry.objects.filter(token_name__startswith=f"{RUN_NAME}-").delete()
        ApiToken.objects.filter(name__startswith=f"{RUN_NAME}-").delete()
