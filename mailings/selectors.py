"""Reads about mailings that span relations: the audience and the ledger."""

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from campaigns.models import Signature
from supporters.models import Language, Supporter

from .models import Delivery, Mailing


def mailing_audience(mailing: Mailing) -> QuerySet[Supporter]:
    """Return the subscribed supporters who match every audience condition of a mailing."""
    audience = Supporter.objects.filter(status=Supporter.Status.SUBSCRIBED)
    include_tag_ids = list(mailing.audience_include_tags.values_list("pk", flat=True))
    exclude_tag_ids = list(mailing.audience_exclude_tags.values_list("pk", flat=True))
    if include_tag_ids:
        audience = audience.filter(
            Exists(
                Supporter.tags.through.objects.filter(
                    supporter_id=OuterRef("pk"), tag_id__in=include_tag_ids
                )
            )
        )
    if exclude_tag_ids:
        audience = audience.exclude(
            Exists(
                Supporter.tags.through.objects.filter(
                    supporter_id=OuterRef("pk"), tag_id__in=exclude_tag_ids
                )
            )
        )
    if mailing.audience_signed_petition_id:
        audience = audience.filter(
            Exists(
                Signature.objects.filter(
                    supporter_id=OuterRef("pk"), petition_id=mailing.audience_signed_petition_id
                )
            )
        )
    if mailing.audience_not_signed_petition_id:
        audience = audience.exclude(
            Exists(
                Signature.objects.filter(
                    supporter_id=OuterRef("pk"),
                    petition_id=mailing.audience_not_signed_petition_id,
                )
            )
        )
    if mailing.audience_language:
        audience = audience.filter(language=mailing.audience_language)
    if mailing.audience_country:
        audience = audience.filter(country=mailing.audience_country.upper())
    return audience


def mailing_delivery_counts(mailing: Mailing) -> dict[str, int]:
    """Return the number of deliveries of a mailing in each status, every status present."""
    counts = dict.fromkeys(Delivery.Status.values, 0)
    rows = (
        Delivery.objects.filter(mailing=mailing)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


@dataclass(frozen=True)
class AudienceCounts:
    """How many supporters a mailing would reach, and how many of them read each language."""

    count: int
    by_language: dict[str, int]


def mailing_audience_counts(mailing: Mailing) -> AudienceCounts:
    """Count a mailing's audience as it stands, by supporter language, every language present."""
    by_language = dict.fromkeys(Language.values, 0)
    rows = mailing_audience(mailing).values_list("language").annotate(n=Count("pk")).order_by()
    for language, n in rows:
        by_language[language] = by_language.get(language, 0) + n
    return AudienceCounts(count=sum(by_language.values()), by_language=by_language)


# The window the sending rate is measured over: long enough to smooth out batches, short enough
# that a pause shows within a minute.
PROGRESS_RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class MailingProgress:
    """How far a mailing's send has got, as its progress page and progress.json report it.

    The field names and types are a contract: progress.json is these fields and nothing else,
    and operators' scripts read it.

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
    """Read a mailing's progress from its ledger in two queries.

    The progress page polls it every few seconds while a mailing sends, so both queries can be
    answered from an index without reading the rows: the counts from
    `delivery_mailing_status_id`, the rate from `delivery_mailing_sent_at`, the partial index of
    sent rows by `sent_at`, of which it reads the last minute's entries alone.
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
