"""What each figure of a report means, said once on the ledger, and counted from it directly.

A delivery counts in a figure while its row meets the figure's condition (DELIVERY_FIGURES),
from the moment the row came to meet it (`delivery_figure_times`, the Python twin of the
conditions, which the bucket writers diff before and after each change). Two figures are
counted from rows of their own: `clicks` (LinkClick rows, every click of a tracked link) and
`signatures` (Signature rows credited to the mailing).

`ledger_counts` counts a mailing's figures from the ledger itself, as the buckets hold them:
the report's buckets are rebuilt from it (mailings/reports/buckets.py), the tests compare the
report with it, and bench_report times it as the yardstick of a report read without buckets.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import Case, Count, DateTimeField, F, Q, Value, When
from django.db.models.functions import Coalesce, Least, Lower, StrIndex, Substr, TruncHour
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import Delivery, LinkClick

from .models import FIGURES, ReportBreakdown

EspStatus = Delivery.EspStatus
Dimension = ReportBreakdown.Dimension

# A complaint counts as delivered (it was) and as an unsubscribe the mailing caused: the
# complainer is suppressed, lost to the list as surely as by the unsubscribe link.
DELIVERED_STATUSES = (EspStatus.DELIVERED, EspStatus.COMPLAINED)
DELIVERY_FIGURES = {
    "sent": Q(status=Delivery.Status.SENT),
    "delivered": Q(esp_status__in=DELIVERED_STATUSES),
    "hard_bounces": Q(esp_status=EspStatus.BOUNCED),
    "soft_bounces": Q(esp_status=EspStatus.SOFT_BOUNCED),
    "complaints": Q(esp_status=EspStatus.COMPLAINED),
    "rejected": Q(esp_status=EspStatus.REJECTED),
    "unsubscribes": Q(unsubscribed_at__isnull=False) | Q(esp_status=EspStatus.COMPLAINED),
    "opens": Q(opened_at__isnull=False),
    "unique_clicks": Q(clicked_at__isnull=False),
}
# The Delivery columns the figures above read, in DeliveryState's order.
STATE_COLUMNS = (
    "status",
    "sent_at",
    "esp_status",
    "esp_status_at",
    "opened_at",
    "clicked_at",
    "unsubscribed_at",
)
_ESP_FIGURES = {
    EspStatus.DELIVERED: ("delivered",),
    EspStatus.SOFT_BOUNCED: ("soft_bounces",),
    EspStatus.BOUNCED: ("hard_bounces",),
    EspStatus.COMPLAINED: ("delivered", "complaints"),
    EspStatus.REJECTED: ("rejected",),
}


@dataclass(frozen=True)
class DeliveryState:
    """The columns of a Delivery that its figures depend on (STATE_COLUMNS)."""

    status: str
    sent_at: datetime | None
    esp_status: str
    esp_status_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    unsubscribed_at: datetime | None


def delivery_figure_times(state: DeliveryState, *, fallback: datetime) -> dict[str, datetime]:
    """Return the figures a delivery counts in (DELIVERY_FIGURES), each with when it began to.

    A time the row lacks (a status with no time beside it) is `fallback`.
    """
    times: dict[str, datetime] = {}
    if state.status == Delivery.Status.SENT:
        times["sent"] = state.sent_at or fallback
    for figure in _ESP_FIGURES.get(state.esp_status, ()):
        times[figure] = state.esp_status_at or fallback
    left = [state.unsubscribed_at] if state.unsubscribed_at else []
    if state.esp_status == EspStatus.COMPLAINED:
        left.append(state.esp_status_at or fallback)
    if left:
        times["unsubscribes"] = min(left)
    if state.opened_at:
        times["opens"] = state.opened_at
    if state.clicked_at:
        times["unique_clicks"] = state.clicked_at
    return times


def mailbox_domain(email: str) -> str:
    """Return the part of an address after its last @, lower-cased, as the report keys it."""
    return email.rpartition("@")[2].lower()[:255]


def hour_of(moment: datetime) -> datetime:
    """Return the start of the hour (UTC) that `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class LedgerCounts:
    """A mailing's figures counted from the ledger: by hour, and by each breakdown's key."""

    hours: dict[datetime, Counter] = field(default_factory=lambda: defaultdict(Counter))
    breakdowns: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))

    def totals(self) -> dict[str, int]:
        """Return each figure's total, every figure present."""
        totals = dict.fromkeys(FIGURES, 0)
        for counts in self.hours.values():
            for figure, amount in counts.items():
                totals[figure] += amount
        return totals


def ledger_counts(mailing_id: int, *, now: datetime | None = None) -> LedgerCounts:
    """Count a mailing's figures from its deliveries, clicks and signatures.

    Each figure by the hour of its own time (an ESP's event time, a click's, a signature's),
    no later than `now`, as the buckets date them; and in total by language version, variant
    (when the mailing tests any), mailbox domain, and link. It reads every delivery of the
    mailing several times over: for rebuilding buckets and for checking them, not for a page.
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


def breakdown_keys(*, language: str, variant: str, email: str) -> list[tuple[str, str]]:
    """Return the breakdown keys a delivery's figures are counted under (no link)."""
    keys = [(Dimension.LANGUAGE, language), (Dimension.DOMAIN, mailbox_domain(email))]
    if variant:
        keys.append((Dimension.VARIANT, variant))
    return keys


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
