"""Reads about mailings that span relations: the audience and the ledger."""

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, QuerySet

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
