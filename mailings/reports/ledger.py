"""A mailing's report counted from its ledger itself: to rebuild its counters, and check them.

`ledger_counts` counts every figure (mailings/report_figures.py) from the deliveries, clicks
and signatures, as the counters hold them: `report_counters_rebuild` puts that in the
counters, the tests compare the report with it, and bench_report times it as the yardstick of
a report read without counters. It reads every delivery of the mailing several times over.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Case, Count, DateTimeField, F, Q, Value, When
from django.db.models.functions import Coalesce, Least, Lower, StrIndex, Substr, TruncHour
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import REPORT_FIGURES, Delivery, LinkClick, ReportBreakdown, ReportHour
from mailings.report_counts import ReportChanges
from mailings.report_figures import DELIVERY_FIGURES, EspStatus, breakdown_keys, hour_of

Dimension = ReportBreakdown.Dimension


@dataclass
class LedgerCounts:
    """A mailing's figures counted from the ledger: by hour, and by each breakdown's key."""

    hours: dict[datetime, Counter] = field(default_factory=lambda: defaultdict(Counter))
    breakdowns: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))

    def totals(self) -> dict[str, int]:
        """Return each figure's total, every figure present."""
        totals = dict.fromkeys(REPORT_FIGURES, 0)
        for counts in self.hours.values():
            for figure, amount in counts.items():
                totals[figure] += amount
        return totals


def ledger_counts(mailing_id: int, *, now: datetime | None = None) -> LedgerCounts:
    """Count a mailing's figures from its deliveries, clicks and signatures.

    Each figure by the hour of its own time (an ESP's event time, a click's, a signature's),
    no later than `now`, as the counters date them; and in total by language version, variant
    (when the mailing tests any), mailbox domain, and link. It reads every delivery of the
    mailing several times over: for rebuilding counters and for checking them, not for a page.
    """
    now = now or timezone.now()
    counts = LedgerCounts()
    deliveries = Delivery.objects.filter(mailing_id=mailing_id)
    for figure, condition in DELIVERY_FIGURES.items():
        rows = (
            deliveries.filter(condition)
            .annotate(hour=TruncHour(_figure_time(figure)))
            .values_list("hour")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for hour, n in rows:
            counts.hours[_hour_no_later_than(hour, now)][figure] += n
    by_figure = {
        figure: Count("pk", filter=condition) for figure, condition in DELIVERY_FIGURES.items()
    }
    keys = {
        Dimension.LANGUAGE: F("version_language"),
        Dimension.VARIANT: F("variant"),
        Dimension.DOMAIN: Lower(
            Substr("supporter__email", StrIndex("supporter__email", Value("@")) + 1)
        ),
    }
    for dimension, key in keys.items():
        rows = deliveries.annotate(key=key).values("key").annotate(**by_figure).order_by()
        for row in rows:
            if dimension == Dimension.VARIANT and not row["key"]:
                continue  # no test: no variant
            breakdown = counts.breakdowns[dimension, str(row.pop("key"))[:255]]
            breakdown.update({figure: n for figure, n in row.items() if n})
    clicks = LinkClick.objects.filter(mailing_id=mailing_id)
    for hour, n in (
        clicks.annotate(hour=TruncHour("created_at")).values_list("hour").annotate(n=Count("pk"))
    ).order_by():
        counts.hours[_hour_no_later_than(hour, now)]["clicks"] += n
    for link_index, n, unique in (
        clicks.values_list("link_index")
        .annotate(n=Count("pk"), unique=Count("supporter", distinct=True))
        .order_by()
    ):
        counts.breakdowns[Dimension.LINK, str(link_index)].update(clicks=n, unique_clicks=unique)
    _count_signatures(mailing_id, counts, now)
    return counts


def _count_signatures(mailing_id: int, counts: LedgerCounts, now: datetime) -> None:
    """Add the signatures credited to the mailing, by hour and by their delivery's keys."""
    signatures = Signature.objects.filter(mailing_id=mailing_id)
    for hour, n in (
        signatures.annotate(hour=TruncHour("created_at"))
        .values_list("hour")
        .annotate(n=Count("pk"))
    ).order_by():
        counts.hours[_hour_no_later_than(hour, now)]["signatures"] += n
    delivered_to = {
        supporter_id: (language, variant)
        for supporter_id, language, variant in Delivery.objects.filter(
            mailing_id=mailing_id, supporter_id__in=signatures.values("supporter_id")
        ).values_list("supporter_id", "version_language", "variant")
    }
    for supporter_id, email in signatures.values_list("supporter_id", "supporter__email"):
        language, variant = delivered_to.get(supporter_id, ("", ""))
        for key in breakdown_keys(language=language, variant=variant, email=email):
            counts.breakdowns[key]["signatures"] += 1


def _figure_time(figure: str):
    """Return the expression of when a delivery began to count in `figure` (see above)."""
    if figure == "sent":
        return Coalesce("sent_at", "created_at")
    if figure == "opens":
        return F("opened_at")
    if figure == "unique_clicks":
        return F("clicked_at")
    esp_time = Coalesce("esp_status_at", "sent_at", "created_at")
    if figure != "unsubscribes":
        return esp_time
    complained = Q(esp_status=EspStatus.COMPLAINED)
    return Case(
        When(unsubscribed_at__isnull=True, then=esp_time),
        When(~complained, then=F("unsubscribed_at")),
        default=Least("unsubscribed_at", esp_time),
        output_field=DateTimeField(),
    )


def _hour_no_later_than(hour: datetime, now: datetime) -> datetime:
    return min(hour, hour_of(now))


def report_counters_rebuild(*, mailing_id: int) -> LedgerCounts:
    """Count a mailing's counters again from its ledger, replacing what they held; return them.

    For mailings sent before reports were kept, and to mend counters after a repair of the
    ledger by hand. Changes to the mailing's ledger made while it runs may be counted twice or
    missed: run it on a mailing that has gone quiet.
    """
    with transaction.atomic():
        counts = ledger_counts(mailing_id)
        ReportHour.objects.filter(mailing_id=mailing_id).delete()
        ReportBreakdown.objects.filter(mailing_id=mailing_id).delete()
        changes = ReportChanges()
        for hour, figures in counts.hours.items():
            changes.hours[mailing_id, hour].update(figures)
        for (dimension, key), figures in counts.breakdowns.items():
            changes.breakdowns[mailing_id, dimension, key].update(figures)
        changes.write()
    return counts
