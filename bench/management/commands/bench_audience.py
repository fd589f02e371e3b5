"""Benchmark the audience count the mailing form shows, and print one JSON line.

Over the synthetic supporters that bench_sign makes (2M by default), a petition signed by every
tenth of them and a tag on every seventh; a mailing whose audience is one of AUDIENCES. The
count is `mailing_audience_counts`, what `audience.json` answers: timed --repeat times after one
untimed run, p50 and p95 by nearest rank. What the run made is removed at the end (with
--keep it stays, and its ids are in the line, for EXPLAIN ANALYZE by hand); the synthetic
supporters stay for the next run, as bench_sign leaves them.
"""

import json
import math
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from bench.content import HTML_BODY, SUBJECT, TEXT_BODY
from bench.preconditions import require_migrated
from bench.synthetic import SYNTHETIC_PREFIX, synthetic_supporters_ensure
from campaigns.models import Campaign, Petition, Signature
from mailings.models import Mailing
from mailings.selectors import mailing_audience_counts
from supporters.models import Supporter, Tag

RUN_NAME = "bench-audience"
# Which synthetic supporters signed the petition and which carry the tag, by supporter id:
# spread over the whole table, as real signers and tags are, and overlapping in part (every
# 70th has both), so that "tagged, not signed" leaves out some of the tagged.
SIGNED_EVERY = 10
TAGGED_EVERY = 7
AUDIENCES = {
    # The demo's audience, and the common appeal: everyone subscribed who has not signed yet.
    "not-signed": "subscribed, not signed the petition",
    # A segment: the tagged supporters who have not signed.
    "tag": "subscribed, tagged, not signed the petition",
    # No condition: every subscribed supporter, the largest count there is.
    "everyone": "subscribed",
}


class Command(BaseCommand):
    help = "Time the audience count of a mailing over synthetic supporters; print one JSON line."

    def add_arguments(self, parser):
        parser.add_argument(
            "--supporters", type=int, default=2_000_000, help="synthetic supporters in the table"
        )
        parser.add_argument("--repeat", type=int, default=20, help="timed counts")
        parser.add_argument("--audience", choices=AUDIENCES, default="not-signed")
        parser.add_argument(
            "--keep",
            action="store_true",
            help="leave the petition, tag and mailing in place (their ids are in the line)",
        )

    def handle(self, *args, supporters, repeat, audience, keep, **options):
        if supporters < 1 or repeat < 1:
            raise CommandError("--supporters and --repeat must be at least 1.")
        require_migrated()

        synthetic_supporters_ensure(supporters, log=self.stderr.write)
        _delete_run()
        try:
            self.stderr.write(f"Signing every {SIGNED_EVERY}th and tagging every {TAGGED_EVERY}th…")
            mailing = _create_run(audience)
            _analyze()
            counts = mailing_audience_counts(mailing)  # untimed: caches warm, plans made
            self.stderr.write(f"Counting “{AUDIENCES[audience]}” {repeat} times…")
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                counts = mailing_audience_counts(mailing)
                samples.append((time.perf_counter() - started) * 1000)
            result = {
                "supporters": Supporter.objects.count(),
                "audience": audience,
                "count": counts.count,
                "by_language": counts.by_language,
                "p50_ms": _percentile(samples, 50),
                "p95_ms": _percentile(samples, 95),
                "min_ms": round(min(samples), 2),
                "max_ms": round(max(samples), 2),
                "repeat": repeat,
                "database": connection.vendor,
            }
            if keep:
                result.update(
                    mailing_id=mailing.pk,
                    petition_id=Petition.objects.get(slug=RUN_NAME).pk,
                    tag_id=Tag.objects.get(name=RUN_NAME).pk,
                )
        finally:
            if not keep:
                self.stderr.write("Cleaning up…")
                _delete_run()
        self.stdout.write(json.dumps(result))


def _percentile(samples: list[float], percent: int) -> float:
    """Return the nearest-rank percentile: a time that was measured, not an interpolation."""
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)], 2)


def _create_run(audience: str) -> Mailing:
    """Create the petition and its signatures, the tag, and a mailing to the audience named."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    synthetic = f"{SYNTHETIC_PREFIX}%"
    with transaction.atomic():
        campaign = Campaign.objects.create(name="Benchmark: audience", slug=RUN_NAME)
        petition = Petition.objects.create(
            campaign=campaign, slug=RUN_NAME, title="Free the marchers", body="<p>Now.</p>",
            target="The authorities", is_open=False,
        )  # fmt: skip
        tag = Tag.objects.create(name=RUN_NAME)
        supporter_table = Supporter._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Signature._meta.db_table} (petition_id, supporter_id, created_at,
                    confirmed_at, source, consented)
                SELECT %s, id, %s, %s, 'bench', %s FROM {supporter_table}
                WHERE email LIKE %s AND id %% %s = 0
                """,  # noqa: S608 -- table names from the models
                [petition.pk, now, now, True, synthetic, SIGNED_EVERY],
            )
            cursor.execute(
                f"""
                INSERT INTO {Supporter.tags.through._meta.db_table} (supporter_id, tag_id)
                SELECT id, %s FROM {supporter_table} WHERE email LIKE %s AND id %% %s = 0
                """,  # noqa: S608 -- table names from the models
                [tag.pk, synthetic, TAGGED_EVERY],
            )
        mailing = Mailing.objects.create(
            campaign=campaign,
            petition=petition,
            name=RUN_NAME,
            subject=SUBJECT,
            from_name="Rally Benchmark",
            from_email="bench@example.invalid",
            html_body=HTML_BODY,
            text_body=TEXT_BODY,
            audience_not_signed_petition=None if audience == "everyone" else petition,
        )
        if audience == "tag":
            mailing.audience_include_tags.add(tag)
    return mailing


def _analyze() -> None:
    """Bring the planner's statistics and the visibility map to where autovacuum keeps them.

    Without it the first counts after a bulk insert see tables autovacuum has not reached yet:
    a state a campaigner meets for a minute after an import, not the steady one measured here.
    """
    tables = [Supporter._meta.db_table, Signature._meta.db_table,
              Supporter.tags.through._meta.db_table]  # fmt: skip
    with connection.cursor() as cursor:
        for table in tables:
            if connection.vendor == "postgresql" and not connection.in_atomic_block:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            else:
                cursor.execute(f"ANALYZE {table}")


def _delete_run() -> None:
    """Remove what a run made (set-based: an ORM cascade over 200k signatures is slow)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for petition in Petition.objects.filter(slug=RUN_NAME):
            cursor.execute(
                f"DELETE FROM {Signature._meta.db_table} WHERE petition_id = %s",  # noqa: S608
                [petition.pk],
            )
        for tag in Tag.objects.filter(name=RUN_NAME):
            cursor.execute(
                f"DELETE FROM {Supporter.tags.through._meta.db_table} WHERE tag_id = %s",  # noqa: S608
                [tag.pk],
            )
        Mailing.objects.filter(campaign__slug=RUN_NAME).delete()
        Petition.objects.filter(slug=RUN_NAME).delete()
        Campaign.objects.filter(slug=RUN_NAME).delete()
        Tag.objects.filter(name=RUN_NAME).delete()
