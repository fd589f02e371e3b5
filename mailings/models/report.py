"""A mailing's report: the counters its figures are read from, and the Report proxy."""

from django.db import models

from mailings.models.mailing import Mailing


class Report(Mailing):
    """A mailing seen as its report: the admin's list of reports and the compare page.

    Its admin (mailings/admin_views/report.py) asks for mailings.view_mailing, so it needs no
    permissions of its own.
    """

    class Meta:
        proxy = True
        default_permissions = ()


# A mailing's report, counted as events arrive: a report reads these, never the ledger (a
# mailing of a million deliveries has a few hundred rows here). Every writer of the ledger adds
# to them in its own transaction (mailings/report_counts.py), so a batch rolled back and run
# again counts once. What is counted, in the order a report shows it: each is a column of
# ReportHour and ReportBreakdown, and means what mailings/report_figures.py says.
REPORT_FIGURES = (
    "sent",
    "delivered",
    "hard_bounces",
    "soft_bounces",
    "complaints",
    "rejected",
    "unsubscribes",
    "opens",
    "unique_clicks",
    "clicks",
    "signatures",
)


class ReportCounts(models.Model):
    """A set of the report's figures. Changes come as amounts added, which may be negative.

    Database defaults, because the writers upsert in SQL naming only the columns they fill.
    """

    sent = models.IntegerField(default=0, db_default=0)
    delivered = models.IntegerField(default=0, db_default=0)
    hard_bounces = models.IntegerField(default=0, db_default=0)
    soft_bounces = models.IntegerField(default=0, db_default=0)
    complaints = models.IntegerField(default=0, db_default=0)
    rejected = models.IntegerField(default=0, db_default=0)
    unsubscribes = models.IntegerField(default=0, db_default=0)
    opens = models.IntegerField(default=0, db_default=0)
    unique_clicks = models.IntegerField(default=0, db_default=0)
    clicks = models.IntegerField(default=0, db_default=0)
    signatures = models.IntegerField(default=0, db_default=0)

    class Meta:
        abstract = True


class ReportHour(ReportCounts):
    """What happened to a mailing within one hour (UTC, from the hour's start): its time series.

    A change is counted in the hour it happened, as the ledger dates it (an ESP's event time,
    a click's, a signature's), never later than when it was recorded.
    """

    # No index of its own: the unique (mailing, hour) index serves lookups by mailing.
    mailing = models.ForeignKey(
        "mailings.Mailing", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailing", "hour"], name="report_hour_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.mailing_id} at {self.hour:%Y-%m-%d %H:00}"


class ReportBreakdown(ReportCounts):
    """A mailing's figures for one language version, variant, mailbox domain or link, all time.

    Not by hour: a report shows these as totals, and a row per hour of each of a list's
    thousands of mailbox domains would make a report read as many rows as there were events.
    """

    class Dimension(models.TextChoices):
        # Delivery.version_language: "" is the mailing's own (default) content.
        LANGUAGE = "language", "Language version"
        # Delivery.variant, "A" to "D"; deliveries of a mailing that tests nothing are not here.
        VARIANT = "variant", "Variant"
        # The part of the recipient's address after the @, lower-cased.
        DOMAIN = "domain", "Mailbox domain"
        # The link's index in the mailing's link list: clicks and unique clicks only.
        LINK = "link", "Link"

    mailing = models.ForeignKey(
        "mailings.Mailing", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    dimension = models.CharField(max_length=16, choices=Dimension.choices)
    key = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mailing", "dimension", "key"], name="report_breakdown_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailing_id} {self.dimension} {self.key!r}"
