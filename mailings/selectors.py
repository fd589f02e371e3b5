"""Reads about mailings that span relations: the audience and the ledger."""

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from campaigns.models import Signature
from mailings.content.rendering import compiled_mailing
from mailings.delivery_counts import delivery_counts_of
from mailings.models import Delivery, Mailing, ReportBreakdown, ReportHour
from mailings.segments import segment_q
from supporters.engagement import Tier, tier_q
from supporters.models import MAILABLE, Language, Segment, Supporter


@dataclass(frozen=True)
class AudienceConditions:
    """The conditions that pick an audience: a saved mailing's, or a form's not saved yet.

    An empty value sets no condition. The admin's live count builds one from the query string
    (mailings/admin_views/audience.py); everything else takes a mailing's with `of`.
    `segment_id`, `include_dormant` and `purpose` are the mailing's fields of those names
    (`audience_segment`, …): a saved segment the other conditions narrow, the opt-in to dormant
    supporters, and whether this is a re-permission mailing, which goes to the dormant alone.
    """

    include_tag_ids: frozenset[int] = frozenset()
    exclude_tag_ids: frozenset[int] = frozenset()
    signed_petition_id: int | None = None
    not_signed_petition_id: int | None = None
    language: str = ""
    country: str = ""
    segment_id: int | None = None
    include_dormant: bool = False
    purpose: str = Mailing.Purpose.APPEAL

    @classmethod
    def of(cls, mailing: Mailing) -> "AudienceConditions":
        """Return the conditions saved on a mailing (two queries, for its tags)."""
        return cls(
            include_tag_ids=frozenset(mailing.audience_include_tags.values_list("pk", flat=True)),
            exclude_tag_ids=frozenset(mailing.audience_exclude_tags.values_list("pk", flat=True)),
            signed_petition_id=mailing.audience_signed_petition_id,
            not_signed_petition_id=mailing.audience_not_signed_petition_id,
            language=mailing.audience_language,
            country=mailing.audience_country,
            segment_id=mailing.audience_segment_id,
            include_dormant=mailing.include_dormant,
            purpose=mailing.purpose,
        )

    @property
    def dormant_only(self) -> bool:
        """Whether the audience is the dormant supporters alone (a re-permission mailing)."""
        return self.purpose == Mailing.Purpose.REPERMISSION

    @property
    def leaves_out_dormant(self) -> bool:
        """Whether dormant supporters are left out: Rally's default, unless the mailing opts in."""
        return settings.RALLY_EXCLUDE_DORMANT and not self.include_dormant and not self.dormant_only


def audience_for(
    conditions: AudienceConditions, *, now: datetime | None = None
) -> QuerySet[Supporter]:
    """Return the mailable supporters (supporters.models.MAILABLE) who match every condition set.

    A supporter who paused their mail (supporters.services.supporter_pause) has `paused_until`
    set until the pause is over and supporter_pauses_end clears it (the sweep runs it, and so
    does every snapshot before it freezes an audience). Asking for None, not for a date in the
    past, lets the count read the index of the mailable alone (`supporter_mailable_audience`),
    with nothing to check for each of its entries.

    A segment's members are read as of `now` (its relative dates, the engagement tiers), and so
    are the dormant (supporters/engagement.py): left out while RALLY_EXCLUDE_DORMANT is on and
    the conditions do not opt in, and the whole audience of a re-permission mailing. The
    snapshot builds the query once, so every slice of it reads the same `now`.
    """
    audience = _audience_without_dormant_rule(conditions, now=now)
    if conditions.dormant_only:
        return audience.filter(tier_q(Tier.DORMANT, now=now))
    if conditions.leaves_out_dormant:
        return audience.exclude(tier_q(Tier.DORMANT, now=now))
    return audience


def _audience_without_dormant_rule(
    conditions: AudienceConditions, *, now: datetime | None
) -> QuerySet[Supporter]:
    audience = Supporter.objects.filter(MAILABLE)
    if conditions.segment_id:
        segment = Segment.objects.filter(pk=conditions.segment_id).first()
        # A segment that does not exist (a form's, deleted meanwhile) is one nobody is in, as a
        # tag or petition that does not exist is a condition nobody meets. Not .none(): the
        # snapshot compiles the query into its own SQL, which an empty queryset cannot give.
        audience = audience.filter(segment_q(segment, now=now) if segment else Q(pk__isnull=True))
    if conditions.include_tag_ids:
        audience = audience.filter(
            Exists(
                Supporter.tags.through.objects.filter(
                    supporter_id=OuterRef("pk"), tag_id__in=sorted(conditions.include_tag_ids)
                )
            )
        )
    if conditions.exclude_tag_ids:
        audience = audience.exclude(
            Exists(
                Supporter.tags.through.objects.filter(
                    supporter_id=OuterRef("pk"), tag_id__in=sorted(conditions.exclude_tag_ids)
                )
            )
        )
    if conditions.signed_petition_id:
        audience = audience.filter(
            Exists(
                Signature.objects.filter(
                    supporter_id=OuterRef("pk"), petition_id=conditions.signed_petition_id
                )
            )
        )
    if conditions.not_signed_petition_id:
        audience = audience.exclude(
            Exists(
                Signature.objects.filter(
                    supporter_id=OuterRef("pk"), petition_id=conditions.not_signed_petition_id
                )
            )
        )
    if conditions.language:
        audience = audience.filter(language=conditions.language)
    if conditions.country:
        audience = audience.filter(country=conditions.country.upper())
    return audience


def mailing_audience(mailing: Mailing) -> QuerySet[Supporter]:
    """Return the subscribed supporters who match every audience condition of a mailing."""
    return audience_for(AudienceConditions.of(mailing))


def audience_dormant_left_out_count(conditions: AudienceConditions) -> int:
    """Count the dormant supporters the conditions would pick but the dormant rule leaves out.

    For the confirmation page: 0 when the mailing opts in, goes to the dormant alone, or
    Rally sends to the dormant anyway (RALLY_EXCLUDE_DORMANT off).
    """
    if not conditions.leaves_out_dormant:
        return 0
    now = timezone.now()
    matching = _audience_without_dormant_rule(conditions, now=now)
    return sum(_counts_by_language(matching.filter(tier_q(Tier.DORMANT, now=now))).values())


@dataclass(frozen=True)
class ListProtection:
    """How the organisation's list protection applies to a mailing, for its confirmation page.

    - `dormant`: "excluded" (Rally's default: the dormant are left out), "included" (the
      mailing opts in), "only" (a re-permission mailing: the dormant alone) or "off"
      (RALLY_EXCLUDE_DORMANT is off: the dormant are mailed as anyone else);
    - `dormant_left_out`: the dormant who match the audience's conditions and are left out;
    - `dormant_days`, `dormant_mailings`: what makes a supporter dormant (the settings);
    - `cap_per_day`, `cap_per_week`: the frequency cap (0: off), applied at claim.
    """

    dormant: str
    dormant_left_out: int
    dormant_days: int
    dormant_mailings: int
    cap_per_day: int
    cap_per_week: int


def mailing_list_protection(mailing: Mailing) -> ListProtection:
    """Say how dormant supporters and the frequency cap apply to a mailing; count the left out."""
    conditions = AudienceConditions.of(mailing)
    if conditions.dormant_only:
        dormant = "only"
    elif not settings.RALLY_EXCLUDE_DORMANT:
        dormant = "off"
    else:
        dormant = "included" if conditions.include_dormant else "excluded"
    return ListProtection(
        dormant=dormant,
        dormant_left_out=audience_dormant_left_out_count(conditions),
        dormant_days=settings.RALLY_ENGAGEMENT_DORMANT_DAYS,
        dormant_mailings=settings.RALLY_ENGAGEMENT_DORMANT_MAILINGS,
        cap_per_day=max(settings.RALLY_FREQUENCY_CAP_PER_DAY, 0),
        cap_per_week=max(settings.RALLY_FREQUENCY_CAP_PER_WEEK, 0),
    )


@contextmanager
def _planned_for_counting() -> Iterator[None]:
    """Plan the counts run inside on one process and without the JIT compiler (PostgreSQL).

    For audience_counts, which the mailing form runs each time the campaigner pauses. In one
    process PostgreSQL merges the supporters' audience index with a condition's signatures or
    tags in id order, on one core instead of three, which the send queue and signing share.
    Parallel workers made the count by a tag slower (each probed the index for every tagged
    supporter) though the count of everyone faster. The count of a large list is planned costly
    enough to be compiled, and compiling took a tenth of it: JIT off, as for a segment's count
    (mailings/segments.py). Measured in docs/performance.md, "Audience counts". The settings go
    with a savepoint rolled back: a caller's transaction keeps its own.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        savepoint = transaction.savepoint()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                cursor.execute("SET LOCAL jit = off")
            yield
        finally:
            transaction.savepoint_rollback(savepoint)


def mailing_audience_sample(mailing: Mailing) -> Supporter | None:
    """Return a member of a mailing's audience picked at random, or None when it is empty.

    Ids from a random point on, not ORDER BY random(): one index range scan however large the
    audience. Used by the preview when no supporter is named.
    """
    audience = mailing_audience(mailing).order_by("pk")
    first, last = audience.first(), audience.last()
    if first is None:
        return None
    start = random.randint(first.pk, last.pk)  # noqa: S311 -- not a secret
    return audience.filter(pk__gte=start).first() or first


def mailing_delivery_counts(mailing: Mailing) -> dict[str, int]:
    """Return the number of deliveries of a mailing in each status, every status present.

    From the counters the database keeps as the ledger changes (mailings/delivery_counts.py):
    a few dozen rows however many deliveries, and the figures of one moment, as a count of
    the ledger in the same snapshot would give them.
    """
    counts = dict.fromkeys(Delivery.Status.values, 0)
    for (status, _), n in delivery_counts_of(mailing.pk).items():
        counts[status] = counts.get(status, 0) + n
    return counts


def mailing_skip_reasons(mailing: Mailing) -> dict[str, int]:
    """Return how many deliveries of a mailing were skipped for each reason, largest first.

    Read by the progress page, from the counters (mailings/delivery_counts.py). Rows skipped
    before reasons were recorded count under "".
    """
    reasons = [
        (reason, n)
        for (status, reason), n in delivery_counts_of(mailing.pk).items()
        if status == Delivery.Status.SKIPPED
    ]
    return dict(sorted(reasons, key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True)
class AudienceCounts:
    """How many supporters a mailing would reach, and how many of them read each language."""

    count: int
    by_language: dict[str, int]


def mailing_audience_counts(mailing: Mailing) -> AudienceCounts:
    """Count a mailing's audience as it stands, by supporter language, every language present."""
    return audience_counts(AudienceConditions.of(mailing))


def audience_counts(conditions: AudienceConditions) -> AudienceCounts:
    """Count the audience the conditions pick, by supporter language, every language present.

    Where the dormant are left out, the count is everyone the conditions pick less the dormant
    among them, each counted on its own: the first reads the index of the mailable alone, as a
    count did before the dormant rule, and the second starts from the dormant (the engagement
    table's index on last_engaged_at), few beside the list. Asked as one query, NOT EXISTS
    would take every member of the audience through the engagement table.
    """
    if not conditions.leaves_out_dormant:
        by_language = _counts_by_language(audience_for(conditions))
    else:
        now = timezone.now()
        matching = _audience_without_dormant_rule(conditions, now=now)
        by_language = _counts_by_language(matching)
        dormant = _counts_by_language(matching.filter(tier_q(Tier.DORMANT, now=now)))
        for language, n in dormant.items():
            by_language[language] -= n
    return AudienceCounts(count=sum(by_language.values()), by_language=by_language)


def _counts_by_language(audience: QuerySet[Supporter]) -> dict[str, int]:
    """Count an audience by language, every language present, in one pass without grouping.

    A FILTERed count per language Rally speaks and one of everyone: a plain aggregate over the
    rows, cheaper than hashing each row's language into a group. Languages Rally does not
    speak (rows written around its forms) are counted by language in a second query, only when
    there are any.
    """
    known = {f"n_{code}": Count("pk", filter=Q(language=code)) for code in Language.values}
    with _planned_for_counting():
        counts = audience.order_by().aggregate(total=Count("*"), **known)
    by_language = {code: counts[f"n_{code}"] or 0 for code in Language.values}
    if (counts["total"] or 0) > sum(by_language.values()):
        others = audience.exclude(language__in=Language.values)
        with _planned_for_counting():
            rows = list(others.values_list("language").annotate(n=Count("*")).order_by())
        for language, n in rows:
            by_language[language] = by_language.get(language, 0) + n
    return by_language


# The window the sending rate is measured over: long enough to smooth out batches, short enough
# that a pause shows within a minute.
PROGRESS_RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class MailingProgress:
    """How far a mailing's send has got, as its progress page and progress.json report it.

    The field names and types are a contract: progress.json is these fields and `results`
    (MailingResults, mailings/admin_views/progress.py), and operators' scripts read it.

    - `total`: every Delivery row of the mailing so far. While the audience snapshot is still
      being taken (`Mailing.audience_snapshot_at` unset) it grows with each slice frozen.
    - `sent`, `failed`, `skipped`, `cancelled`, `unknown`: rows in that status.
    - `pending`: rows not sent yet, pending or claimed by a worker right now.
    - `rate_per_s`: rows sent in the last PROGRESS_RATE_WINDOW_SECONDS (by `sent_at`) divided
      by those seconds, rounded half up to one decimal.
    - `eta_seconds`: `pending / rate_per_s` (the rounded rate) rounded up to a whole second;
      None when nothing is pending or the rate is 0.
    """

    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    cancelled: int
    unknown: int
    pending: int
    rate_per_s: float
    eta_seconds: int | None

    @property
    def done(self) -> int:
        """Return how many rows have an outcome: the progress bar's value, out of `total`."""
        return self.total - self.pending


def mailing_progress(mailing: Mailing) -> MailingProgress:
    """Read a mailing's progress in two queries, neither of which reads its deliveries.

    The progress page polls it every few seconds while a mailing sends: the counts come from
    the mailing's counters (mailing_delivery_counts), the rate from `delivery_mailing_sent_at`,
    the partial index of sent rows by `sent_at`, of which it reads the last minute's entries
    alone.
    """
    counts = mailing_delivery_counts(mailing)
    window_start = timezone.now() - timedelta(seconds=PROGRESS_RATE_WINDOW_SECONDS)
    sent_in_window = Delivery.objects.filter(
        mailing=mailing, status=Delivery.Status.SENT, sent_at__gte=window_start
    ).count()
    # Decimal, so that the rounding and the ETA are exact: in floats 21 / 0.7 is 30.000…04,
    # which rounds up to 31.
    rate_per_s = (Decimal(sent_in_window) / PROGRESS_RATE_WINDOW_SECONDS).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    pending = counts[Delivery.Status.PENDING] + counts[Delivery.Status.CLAIMED]
    # From the rounded rate, so that a script can check one figure against the other.
    eta_seconds = math.ceil(pending / rate_per_s) if pending and rate_per_s else None
    return MailingProgress(
        status=mailing.status,
        total=sum(counts.values()),
        sent=counts[Delivery.Status.SENT],
        failed=counts[Delivery.Status.FAILED],
        skipped=counts[Delivery.Status.SKIPPED],
        cancelled=counts[Delivery.Status.CANCELLED],
        unknown=counts[Delivery.Status.UNKNOWN],
        pending=pending,
        rate_per_s=float(rate_per_s),
        eta_seconds=eta_seconds,
    )


@dataclass(frozen=True)
class LinkResult:
    """One link of a mailing: as the campaigner wrote it, and how often it was followed."""

    index: int
    url: str
    clicks: int
    unique_clicks: int


@dataclass(frozen=True)
class MailingResults:
    """What happened after a mailing was sent, as its progress page and progress.json report.

    - `delivered`, `hard_bounces`, `soft_bounces`, `complaints`, `rejected`: deliveries whose
      latest ESP event (Delivery.esp_status, by webhook) says so; a complaint counts as
      delivered too, since it was.
    - `opens`: deliveries opened, by the pixel, an ESP's open event or a click. Approximate:
      images turned off hide an open, and Apple Mail's privacy protection loads every image
      of every message in advance, which looks like an open.
    - `unique_clicks`: deliveries with a tracked link followed; `clicks`: every click, repeats
      and link scanners included; `links`: each link of the mailing with its own counts.
    - `signatures`: signatures credited to the mailing (Signature.mailing).
    """

    sent: int
    delivered: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    rejected: int
    opens: int
    unique_clicks: int
    clicks: int
    signatures: int
    links: tuple[LinkResult, ...]

    def percent_of_sent(self, count: int) -> float | None:
        """Return `count` as a percentage of the messages sent, to one decimal; None if none."""
        if not self.sent:
            return None
        return float(
            (Decimal(100 * count) / self.sent).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        )


def mailing_results(mailing: Mailing) -> MailingResults:
    """Read what a mailing achieved from its report's counters: two queries, however large.

    The totals sum the mailing's hourly counters (ReportHour: a row per hour something
    happened); the links are its link breakdowns. The counters mean on the ledger what each
    figure says (report_figures.py) and are kept by every writer of the ledger
    (report_counts.py); the progress page polls this every few seconds while a mailing sends,
    so it never counts the deliveries (docs/performance.md, "Report counters").
    """
    figures = [field.name for field in fields(MailingResults) if field.name != "links"]
    totals = ReportHour.objects.filter(mailing=mailing).aggregate(
        **{figure: Sum(figure) for figure in figures}
    )
    by_link = {
        int(key): (clicks, unique)
        for key, clicks, unique in ReportBreakdown.objects.filter(
            mailing=mailing, dimension=ReportBreakdown.Dimension.LINK
        ).values_list("key", "clicks", "unique_clicks")
    }
    try:
        sources = [link.source for link in compiled_mailing(mailing).links.links]
    except ValidationError:  # a mailing that no longer compiles still has its counts
        sources = []
    links = tuple(
        LinkResult(
            index=index,
            url=sources[index] if index < len(sources) else f"link {index + 1}",
            clicks=by_link.get(index, (0, 0))[0],
            unique_clicks=by_link.get(index, (0, 0))[1],
        )
        for index in sorted(set(range(len(sources))) | set(by_link))
    )
    return MailingResults(**{key: value or 0 for key, value in totals.items()}, links=links)
