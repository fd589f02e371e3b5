"""Saved segments as queries: a segment's conditions turned into a condition on Supporter.

The models live in supporters (supporters/segments/models.py) but name petitions and mailings
by string; this module may import Signature and Delivery, so the query is built here (the
layer rule). The mailing audience (mailings/selectors.py), the admin's live count and the
OSDI API's queries all read a segment through `segment_q`, `segment_audience` and
`segment_count`.

Each condition is one EXISTS over the table that holds its facts, or a test of a supporter
column, so PostgreSQL plans it as a semi-join (or an anti-join, negated) beside the index of
the mailable; a negated condition is NOT of the same condition, never a second query.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import Delivery
from supporters.engagement import tier_q
from supporters.models import MAILABLE, Segment, SegmentCondition, Supporter

Kind = SegmentCondition.Kind

# Which fields each kind reads, beside `kind` and `negate`; the admin's form refuses a
# condition that leaves out one it needs or sets one it does not read. `days` and `mailing`
# may be left empty (ever; any mailing), the others are required.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.HAS_TAG: ("tag",),
    Kind.SIGNED_PETITION: ("petition",),
    Kind.RECEIVED: (),
    Kind.OPENED: (),
    Kind.CLICKED: (),
    Kind.SIGNED_FROM_MAILING: (),
    Kind.LANGUAGE: ("language",),
    Kind.COUNTRY: ("country",),
    Kind.SOURCE: ("source",),
    Kind.SUBSCRIBED_BEFORE: ("date",),
    Kind.SUBSCRIBED_AFTER: ("date",),
    Kind.ENGAGEMENT_TIER: ("tier",),
}
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.SIGNED_PETITION: ("days",),
    Kind.RECEIVED: ("mailing", "days"),
    Kind.OPENED: ("mailing", "days"),
    Kind.CLICKED: ("mailing", "days"),
    Kind.SIGNED_FROM_MAILING: ("mailing", "days"),
}
# Every field a condition may carry, in the order the form shows them.
CONDITION_FIELDS = ("tag", "petition", "mailing", "days", "language", "country", "source")
CONDITION_FIELDS += ("date", "tier")


# The most days a condition looks back: a century is further back than anyone joined, and a
# window much longer would reach before the first year a date can hold. The form refuses more;
# a condition saved otherwise is read as this.
MAX_DAYS = 36_500


def fields_read_by(kind: str) -> tuple[str, ...]:
    """Return the fields a condition of this kind reads, required ones first."""
    return REQUIRED_FIELDS.get(kind, ()) + OPTIONAL_FIELDS.get(kind, ())


def segment_q(segment: Segment, *, now: datetime | None = None) -> Q:
    """Return the condition on Supporter that picks the members of a saved segment at `now`.

    Membership alone: who may be mailed is segment_audience's part. A segment with no
    conditions matches everyone.
    """
    return conditions_q(segment.conditions.all(), match=segment.match, now=now)


def conditions_q(
    conditions: Iterable[SegmentCondition], *, match: str, now: datetime | None = None
) -> Q:
    """Return the condition on Supporter for these conditions combined by `match` (all|any).

    The conditions need not be saved: the admin counts a form's before it is saved.
    """
    now = now or timezone.now()
    combined = Q()
    for condition in conditions:
        one = condition_q(condition, now=now)
        combined = (combined | one) if match == Segment.Match.ANY and combined else combined & one
    return combined


def condition_q(condition: SegmentCondition, *, now: datetime) -> Q:
    """Return the condition on Supporter for one segment condition, negated if it says so."""
    matched = Q(_positive_q(condition, now=now))
    return ~matched if condition.negate else matched


def _positive_q(condition: SegmentCondition, *, now: datetime) -> Q:
    kind = condition.kind
    since = now - timedelta(days=min(condition.days, MAX_DAYS)) if condition.days else None
    if kind == Kind.HAS_TAG:
        return Q(
            Exists(
                Supporter.tags.through.objects.filter(
                    supporter_id=OuterRef("pk"), tag_id=condition.tag_id
                )
            )
        )
    if kind == Kind.SIGNED_PETITION:
        signatures = Signature.objects.filter(
            supporter_id=OuterRef("pk"), petition_id=condition.petition_id
        )
        return Q(Exists(_within(signatures, "created_at", since)))
    if kind in _DELIVERY_MOMENT:
        moment = _DELIVERY_MOMENT[kind]
        deliveries = Delivery.objects.filter(supporter_id=OuterRef("pk"))
        if kind == Kind.RECEIVED:
            deliveries = deliveries.filter(status=Delivery.Status.SENT)
        if condition.mailing_id:
            deliveries = deliveries.filter(mailing_id=condition.mailing_id)
        if since is None and kind != Kind.RECEIVED:
            deliveries = deliveries.filter(**{f"{moment}__isnull": False})
        return Q(Exists(_within(deliveries, moment, since)))
    if kind == Kind.SIGNED_FROM_MAILING:
        signatures = Signature.objects.filter(supporter_id=OuterRef("pk"))
        if condition.mailing_id:
            signatures = signatures.filter(mailing_id=condition.mailing_id)
        else:
            signatures = signatures.filter(mailing_id__isnull=False)
        return Q(Exists(_within(signatures, "created_at", since)))
    if kind == Kind.LANGUAGE:
        return Q(language=condition.language)
    if kind == Kind.COUNTRY:
        return Q(country=str(condition.country).upper())
    if kind == Kind.SOURCE:
        return Q(source=condition.source)
    if kind == Kind.SUBSCRIBED_BEFORE:
        return Q(created_at__lt=start_of_day(condition.date))
    if kind == Kind.SUBSCRIBED_AFTER:
        return Q(created_at__gte=start_of_day(condition.date))
    if kind == Kind.ENGAGEMENT_TIER:
        return tier_q(condition.tier, now=now)
    raise ValueError(f"No segment condition of kind {kind!r}.")


# The Delivery column each event kind is dated by: a delivery received is sent (and dated by
# sent_at); one opened or clicked has that moment set, whatever its status since.
_DELIVERY_MOMENT = {
    Kind.RECEIVED: "sent_at",
    Kind.OPENED: "opened_at",
    Kind.CLICKED: "clicked_at",
}


def _within(rows: QuerySet, moment: str, since: datetime | None) -> QuerySet:
    return rows if since is None else rows.filter(**{f"{moment}__gte": since})


def start_of_day(day) -> datetime:
    """Return the moment `day` begins for the campaigner (RALLY_CAMPAIGNER_TIMEZONE).

    "Joined before 1 March" means before midnight on 1 March where the campaigner is, not in
    UTC; the schedule page speaks in the same zone (mailings/sending/campaigner_time.py).
    """
    local = datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.RALLY_CAMPAIGNER_TIMEZONE))
    try:
        return local.astimezone(UTC)
    except OverflowError:
        # The first or last day a date can hold, in a zone whose midnight falls outside the
        # years UTC can hold: the start or the end of time, as far as anyone's joining goes.
        return (
            datetime.min.replace(tzinfo=UTC) if day.year == 1 else datetime.max.replace(tzinfo=UTC)
        )


def segment_audience(segment: Segment, *, now: datetime | None = None) -> QuerySet[Supporter]:
    """Return the mailable supporters (supporters.models.MAILABLE) in a saved segment."""
    return Supporter.objects.filter(MAILABLE).filter(segment_q(segment, now=now))


def segment_count(segment: Segment, *, now: datetime | None = None) -> int:
    """Count the mailable supporters in a saved segment, as it stands."""
    conditions = list(segment.conditions.all())
    return conditions_count(conditions, match=segment.match, now=now)


def conditions_count(
    conditions: Iterable[SegmentCondition], *, match: str, now: datetime | None = None
) -> int:
    """Count the mailable supporters these conditions pick (the admin's form, not yet saved)."""
    conditions = list(conditions)
    audience = Supporter.objects.filter(MAILABLE).filter(
        conditions_q(conditions, match=match, now=now)
    )
    reads_tiers = any(condition.kind == Kind.ENGAGEMENT_TIER for condition in conditions)
    return _count(audience, merge_in_id_order=reads_tiers)


def _count(audience: QuerySet[Supporter], *, merge_in_id_order: bool) -> int:
    """Count an audience with PostgreSQL's JIT compiler off (other databases have none).

    A segment's count is a join or two over the whole list, planned costly enough to be
    compiled, and compiling took a large share of the count. With `merge_in_id_order` (a
    segment that reads engagement tiers) two more settings go with it:

    - `random_page_cost` as for pages already in memory, which the indexes a count reads are:
      at the default PostgreSQL prices walking an index in id order at several times a
      sequential read, so it hashes whole tables (spilling the hash to disk) where merging
      the supporters with their engagement rows in id order, through the indexes
      supporter_mailable_audience and engagement_by_supporter, is cheaper;
    - no parallel workers: each worker would read a merge join's inner side whole.

    The deliveries' conditions are left to the planner's own choice, a parallel hash join of
    an index range by date: merging would first sort that range by supporter. Measured in
    docs/performance.md, "Segment counts". The settings go with a savepoint rolled back: a
    caller's transaction keeps its own.
    """
    if connection.vendor != "postgresql":
        return audience.count()
    with transaction.atomic():
        savepoint = transaction.savepoint()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                if merge_in_id_order:
                    cursor.execute("SET LOCAL random_page_cost = 1.1")
                    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            return audience.count()
        finally:
            transaction.savepoint_rollback(savepoint)
