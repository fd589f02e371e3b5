"""Read a mailing's report, or several mailings side by side, from the counters alone.

A report is a few indexed reads of a mailing's counters (ReportHour and ReportBreakdown), a
few hundred rows whatever the size of its ledger; its figures mean what mailings/report_figures.py
says. The report page and report.json show a MailingReport (mailings/admin_views/report.py).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db.models import Count, Sum

from mailings.content.rendering import compiled_mailing
from mailings.models import REPORT_FIGURES, Mailing, ReportBreakdown, ReportHour
from mailings.report_figures import hour_of
from supporters.models import Language

Dimension = ReportBreakdown.Dimension

# The headline figures, as a campaigner reads them; each also per 1,000 messages sent.
HEADLINE = (
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("hard_bounces", "Hard bounces"),
    ("soft_bounces", "Soft bounces"),
    ("complaints", "Complaints (marked as spam)"),
    ("rejected", "Rejected by the ESP"),
    ("unsubscribes", "Unsubscribes it caused (its link or header, or a complaint)"),
    ("opens", "Opens (approximate)"),
    ("unique_clicks", "Unique clickers"),
    ("signatures", "Signatures credited"),
)
# The lines of the chart: cumulative, and each equal at its end to the headline figure.
# "clicks" are people who clicked (unique clickers), not every click.
SERIES = (
    ("delivered", "delivered", "Deliveries"),
    ("clicks", "unique_clicks", "Clicks (people)"),
    ("signatures", "signatures", "Signatures"),
    ("unsubscribes", "unsubscribes", "Unsubscribes"),
)
# The chart counts by the hour for its first three days, then by the day.
HOURLY_POINTS = 72
# Daily points after that at most; a later event is counted in the last point.
DAILY_POINTS_MAX = 400
# Mailbox domains shown by name: the largest by messages sent, and only those with at least
# DOMAIN_MIN_SENT of them (a domain of one or two addresses may be somebody's own); the rest
# are summed as "Other domains".
DOMAINS_SHOWN = 20
DOMAIN_MIN_SENT = 5
OTHER_DOMAINS = "Other domains"


def per_thousand(count: int, sent: int) -> float | None:
    """Return `count` per 1,000 messages sent, to two decimals; None when nothing was sent."""
    if not sent:
        return None
    value = (Decimal(1000 * count) / sent).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return float(value)


@dataclass(frozen=True)
class SeriesPoint:
    """The cumulative figures of the chart by `at`: everything counted in the hours before it."""

    at: datetime
    delivered: int
    clicks: int
    signatures: int
    unsubscribes: int

    def hours_since(self, start: datetime) -> float:
        return (self.at - start).total_seconds() / 3600


@dataclass(frozen=True)
class BreakdownRow:
    """The figures of one language version, variant or mailbox domain."""

    key: str
    label: str
    figures: dict[str, int]

    def per_thousand(self, figure: str) -> float | None:
        return per_thousand(self.figures[figure], self.figures["sent"])

    @property
    def rates(self) -> dict[str, float | None]:
        """Return every figure per 1,000 sent (for templates, which cannot pass arguments)."""
        return {figure: self.per_thousand(figure) for figure in REPORT_FIGURES}


@dataclass(frozen=True)
class LinkRow:
    """A link of the mailing, as the campaigner wrote it, and how often it was followed."""

    index: int
    url: str
    clicks: int
    unique_clicks: int


@dataclass(frozen=True)
class MailingReport:
    """What a mailing achieved: its totals, their course over time, and their breakdowns."""

    mailing: Mailing
    totals: dict[str, int]
    # When sending began, to the hour (the chart's origin); None before anything was counted.
    start: datetime | None
    series: list[SeriesPoint]
    links: list[LinkRow]
    by_language: list[BreakdownRow]
    by_domain: list[BreakdownRow]
    variants: list[BreakdownRow]
    variant_subjects: dict[str, str]
    ab: dict | None

    def per_thousand(self, figure: str) -> float | None:
        """Return a headline figure per 1,000 messages sent (None when none was sent)."""
        return per_thousand(self.totals[figure], self.totals["sent"])


def mailing_report(mailing: Mailing) -> MailingReport:
    """Read a mailing's report from its counters: five queries, whatever its ledger holds.

    The hours; the languages, variants and links; the largest mailbox domains; the sum of all
    domains, for "Other domains"; and the variants' subjects. A list's long tail of domains
    (tens of thousands) is summed and sorted in the database, never sent to Python row by row.
    """
    hours = list(
        ReportHour.objects.filter(mailing=mailing)
        .order_by("hour")
        .values_list("hour", *REPORT_FIGURES)
    )
    breakdowns: dict[str, list[tuple[str, dict[str, int]]]] = defaultdict(list)
    rows = ReportBreakdown.objects.filter(mailing=mailing)
    for dimension, key, *amounts in rows.filter(
        dimension__in=[Dimension.LANGUAGE, Dimension.VARIANT, Dimension.LINK]
    ).values_list("dimension", "key", *REPORT_FIGURES):
        breakdowns[dimension].append((key, dict(zip(REPORT_FIGURES, amounts, strict=True))))
    totals = _totals(amounts for _, *amounts in hours)
    start = _series_start(mailing, hours)
    subjects = variant_subjects(mailing)
    return MailingReport(
        mailing=mailing,
        totals=totals,
        start=start,
        series=_series(start, hours),
        links=_links(mailing, breakdowns[Dimension.LINK]),
        by_language=sorted(
            (
                BreakdownRow(key, _language_label(key), figures)
                for key, figures in breakdowns[Dimension.LANGUAGE]
            ),
            key=lambda row: (-row.figures["sent"], row.key),
        ),
        by_domain=_domains(rows.filter(dimension=Dimension.DOMAIN)),
        variants=sorted(
            (
                BreakdownRow(key, f"Variant {key}", figures)
                for key, figures in breakdowns[Dimension.VARIANT]
                if key
            ),
            key=lambda row: row.key,
        ),
        variant_subjects=subjects,
        ab=ab_summary(mailing),
    )


def variant_subjects(mailing: Mailing) -> dict[str, str]:
    """Return the subject line each A/B variant of a mailing was sent with, by its label.

    "A" (and "", no test) is the mailing's own subject; B to D are its MailingVariants' (of the
    default content), where a blank subject is A's. One query.
    """
    subjects = {"": mailing.subject, "A": mailing.subject}
    for label, subject in mailing.variants.filter(language="").values_list("label", "subject"):
        subjects[label] = subject or mailing.subject
    return subjects


def ab_summary(mailing: Mailing) -> dict | None:
    """Return where a mailing's A/B test stands, or None when it tests nothing.

    The report's `ab`: {"status", "metric", "winner", "confidence"}: the test's status
    (Mailing.ABStatus), the metric it is won by, the winning label (None until there is one),
    and how sure the last decision was that the leader beats every other variant, 0 to 1
    (None before any decision). mailings/sending/ab_test.py decides and records them.
    """
    if not mailing.ab_status:
        return None
    decision = mailing.ab_decision if isinstance(mailing.ab_decision, dict) else {}
    return {
        "status": mailing.ab_status,
        "metric": mailing.ab_metric,
        "winner": mailing.ab_winner or None,
        "confidence": decision.get("confidence"),
    }


@dataclass(frozen=True)
class ComparedMailing:
    """One mailing of a comparison: its totals and its cumulative signatures over time."""

    mailing: Mailing
    totals: dict[str, int]
    start: datetime | None
    signatures: list[SeriesPoint]

    def per_thousand(self, figure: str) -> float | None:
        return per_thousand(self.totals[figure], self.totals["sent"])


def mailings_compared(mailings: list[Mailing]) -> list[ComparedMailing]:
    """Read mailings' totals and signature series side by side: one query for them all."""
    hours_of: dict[int, list[tuple]] = defaultdict(list)
    for mailing_id, hour, *amounts in (
        ReportHour.objects.filter(mailing__in=[mailing.pk for mailing in mailings])
        .order_by("mailing_id", "hour")
        .values_list("mailing_id", "hour", *REPORT_FIGURES)
    ):
        hours_of[mailing_id].append((hour, *amounts))
    compared = []
    for mailing in mailings:
        hours = hours_of[mailing.pk]
        start = _series_start(mailing, hours)
        compared.append(
            ComparedMailing(
                mailing=mailing,
                totals=_totals(amounts for _, *amounts in hours),
                start=start,
                signatures=_series(start, hours),
            )
        )
    return compared


def _totals(rows) -> dict[str, int]:
    totals = dict.fromkeys(REPORT_FIGURES, 0)
    for amounts in rows:
        for figure, amount in zip(REPORT_FIGURES, amounts, strict=True):
            totals[figure] += amount
    return totals


def _series_start(mailing: Mailing, hours: list[tuple]) -> datetime | None:
    """Return the chart's origin: the hour sending began, or else the first hour counted."""
    if mailing.started_at is not None:
        return hour_of(mailing.started_at)
    return hours[0][0] if hours else None


def _series(start: datetime | None, hours: list[tuple]) -> list[SeriesPoint]:
    """Return the cumulative figures by the end of each hour, then of each day, from `start`.

    Up to the period that holds the last hour counted. Hours counted before `start` (an ESP's
    clock ahead of ours) are in the first point.
    """
    if start is None or not hours:
        return []
    last = hours[-1][0]
    ends = [start + timedelta(hours=n) for n in range(1, HOURLY_POINTS + 1)]
    while ends[-1] <= last and len(ends) < HOURLY_POINTS + DAILY_POINTS_MAX:
        ends.append(ends[-1] + timedelta(days=1))
    if ends[-1] <= last:
        ends.append(last + timedelta(hours=1))
    # Only up to the period that holds the last hour counted: the first end past it.
    ends = ends[: next(n for n, end in enumerate(ends) if end > last) + 1]
    index = {figure: REPORT_FIGURES.index(figure) for _, figure, _ in SERIES}
    running = dict.fromkeys(index, 0)
    points, position = [], 0
    for end in ends:
        while position < len(hours) and hours[position][0] < end:
            amounts = hours[position][1:]
            for figure, at in index.items():
                running[figure] += amounts[at]
            position += 1
        points.append(
            SeriesPoint(
                at=end,
                **{name: running[figure] for name, figure, _ in SERIES},
            )
        )
    return points


def _links(mailing: Mailing, rows: list[tuple[str, dict[str, int]]]) -> list[LinkRow]:
    """Return every link of the mailing with its clicks, and any counted link it no longer has."""
    counted = {int(key): figures for key, figures in rows if key.isdigit()}
    try:
        sources = [link.source for link in compiled_mailing(mailing).links.links]
    except ValidationError:  # a mailing that no longer compiles still has its counts
        sources = []
    return [
        LinkRow(
            index=index,
            url=sources[index] if index < len(sources) else f"link {index + 1}",
            clicks=counted.get(index, {}).get("clicks", 0),
            unique_clicks=counted.get(index, {}).get("unique_clicks", 0),
        )
        for index in sorted(set(range(len(sources))) | set(counted))
    ]


def _language_label(key: str) -> str:
    if not key:
        return "The mailing's own content (no version in the reader's language)"
    try:
        return f"{Language(key).label} version"
    except ValueError:
        return f"{key} version"


def _domains(rows) -> list[BreakdownRow]:
    """Return the largest mailbox domains by messages sent, and the rest summed as one row.

    `rows` are a mailing's domain counters (a queryset): two queries, the largest and the sum.
    """
    largest = [
        (key, dict(zip(REPORT_FIGURES, amounts, strict=True)))
        for key, *amounts in rows.exclude(key="")
        .filter(sent__gte=DOMAIN_MIN_SENT)
        .order_by("-sent", "key")
        .values_list("key", *REPORT_FIGURES)[:DOMAINS_SHOWN]
    ]
    everything = rows.aggregate(
        rows=Count("pk"), **{figure: Sum(figure) for figure in REPORT_FIGURES}
    )
    shown = [BreakdownRow(key, key, figures) for key, figures in largest]
    if everything["rows"] > len(shown):
        other = {
            figure: (everything[figure] or 0) - sum(row.figures[figure] for row in shown)
            for figure in REPORT_FIGURES
        }
        shown.append(BreakdownRow("", OTHER_DOMAINS, other))
    return shown
