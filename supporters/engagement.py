"""Engagement tiers: who is active, lapsing or dormant, read from the Engagement rows.

The rows are written as things happen (supporters.models.Engagement); this module only reads
them. A supporter's last engagement is their last open, click or signature, or their joining
when they have done none of these since; the thresholds are settings:

- **active**: engaged within RALLY_ENGAGEMENT_ACTIVE_DAYS;
- **dormant**: no engagement for RALLY_ENGAGEMENT_DORMANT_DAYS, and at least
  RALLY_ENGAGEMENT_DORMANT_MAILINGS bulk mailings sent to them since;
- **lapsing**: everyone else.

A supporter with no Engagement row was never mailed and never engaged since joining: active
while they joined recently, else lapsing, never dormant (no mailing went unanswered).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone

from supporters.models import Engagement, SegmentCondition

Tier = SegmentCondition.Tier


def _cutoffs(now: datetime | None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    return (
        now - timedelta(days=settings.RALLY_ENGAGEMENT_ACTIVE_DAYS),
        now - timedelta(days=settings.RALLY_ENGAGEMENT_DORMANT_DAYS),
    )


def tier_q(tier: str, *, now: datetime | None = None) -> Q:
    """Return the condition on Supporter that picks the supporters in `tier` at `now`.

    Active reads the last engagement through an outer join, the joining date standing in where
    there is no row; dormant is an EXISTS over the engagement table; lapsing is neither. So the
    three partition every supporter. (Active as an EXISTS OR'd with "no row and joined
    recently" cannot be planned as a join: PostgreSQL ran both subqueries once per supporter,
    many times slower at a large list than the join; docs/performance.md, "Segment counts".)
    """
    active_since, dormant_before = _cutoffs(now)
    # The join to engagement is nullable, so the ORM makes it LEFT OUTER, and COALESCE is never
    # NULL: negated (lapsing, "not active"), it stays exact.
    active = Q(
        GreaterThanOrEqual(Coalesce("engagement__last_engaged_at", "created_at"), active_since)
    )
    dormant = Exists(
        Engagement.objects.filter(
            supporter_id=OuterRef("pk"),
            last_engaged_at__lt=dormant_before,
            mailings_since_engaged__gte=settings.RALLY_ENGAGEMENT_DORMANT_MAILINGS,
        )
    )
    if tier == Tier.ACTIVE:
        return active
    if tier == Tier.DORMANT:
        return dormant
    if tier == Tier.LAPSING:
        return ~active & ~dormant
    raise ValueError(f"No engagement tier {tier!r}: it is one of {', '.join(Tier.values)}.")


def tier_of(
    engagement: Engagement | None, *, joined_at: datetime, now: datetime | None = None
) -> str:
    """Return one supporter's tier from their Engagement row (None if they have none)."""
    active_since, dormant_before = _cutoffs(now)
    last_engaged_at = engagement.last_engaged_at if engagement else joined_at
    if last_engaged_at >= active_since:
        return Tier.ACTIVE
    if (
        engagement is not None
        and last_engaged_at < dormant_before
        and engagement.mailings_since_engaged >= settings.RALLY_ENGAGEMENT_DORMANT_MAILINGS
    ):
        return Tier.DORMANT
    return Tier.LAPSING
