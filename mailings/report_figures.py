"""What each figure of a mailing's report means on the ledger: said once, for every counter.

A delivery counts in a figure while its row meets the figure's condition (DELIVERY_FIGURES),
from the moment the row came to meet it (`delivery_figure_times`, the Python twin of the
conditions, which the writers diff before and after each change: mailings/report_counts.py).
Two figures are counted from rows of their own: `clicks` (LinkClick rows, every click of a
tracked link) and `signatures` (Signature rows credited to the mailing). Each figure is also
broken down by the delivery's language version, A/B variant and mailbox domain
(`breakdown_keys`); clicks by link. mailings/reports/ledger.py counts them all from the ledger.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q

from mailings.models import Delivery, ReportBreakdown

EspStatus = Delivery.EspStatus
Dimension = ReportBreakdown.Dimension
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


def breakdown_keys(*, language: str, variant: str, email: str) -> list[tuple[str, str]]:
    """Return the breakdown keys a delivery's figures are counted under (no link)."""
    keys = [(Dimension.LANGUAGE, language), (Dimension.DOMAIN, mailbox_domain(email))]
    if variant:
        keys.append((Dimension.VARIANT, variant))
    return keys
