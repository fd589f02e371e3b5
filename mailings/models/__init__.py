"""The models of mailings, by topic: a mailing and what it says (mailing.py), the ledger and
what comes back about it (ledger.py), and the report's counters (report.py)."""

from mailings.models.ledger import (
    HARD_ESP_STATUSES,
    Delivery,
    DeliveryCount,
    EspStatus,
    LinkClick,
    OutboxMessage,
    TrackingEvent,
)
from mailings.models.mailing import (
    AB_SHARE_MAX,
    AB_SHARE_MIN,
    AB_WAIT_MAX_HOURS,
    AB_WAIT_MIN_HOURS,
    ABMetric,
    ABStatus,
    ABWithoutWinner,
    Mailing,
    MailingAuditEntry,
    MailingVariant,
    MailingVersion,
)
from mailings.models.report import (
    REPORT_FIGURES,
    Report,
    ReportBreakdown,
    ReportCounts,
    ReportHour,
)

__all__ = [
    "AB_SHARE_MAX",
    "AB_SHARE_MIN",
    "AB_WAIT_MAX_HOURS",
    "AB_WAIT_MIN_HOURS",
    "ABMetric",
    "ABStatus",
    "ABWithoutWinner",
    "Delivery",
    "DeliveryCount",
    "EspStatus",
    "HARD_ESP_STATUSES",
    "LinkClick",
    "Mailing",
    "MailingAuditEntry",
    "MailingVariant",
    "MailingVersion",
    "OutboxMessage",
    "REPORT_FIGURES",
    "Report",
    "ReportBreakdown",
    "ReportCounts",
    "ReportHour",
    "TrackingEvent",
]
