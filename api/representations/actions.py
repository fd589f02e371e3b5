"""Petitions, signatures, messages and queries as the OSDI API shows them, in Action Network's
field names.

Called by the API's views and by the outbound webhooks, which pass `base_url=site_base_url()`.
A representation reads only the row it is given, except where its docstring says otherwise, so
a page of them costs the queries its view makes, not one per row. The id in an href is the
row's primary key: stable, and what a client takes from the href (`href.rsplit("/", 1)[-1]`)
and from the identifier `rally:<id>` alike. Fields of Rally's own carry the `rally:` prefix,
as Action Network's carry `action_network:`.
"""

from datetime import datetime

from django.conf import settings
from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse

from api.hal import NAMESPACE, curies, iso_datetime, link
from api.representations.people import person_href
from campaigns.models import Petition, Signature
from mailings.models import Mailing, ReportHour
from supporters.models import Segment, Supporter

ORIGIN_SYSTEM = "Rally"

# Action Network's message statuses, from Rally's. A mailing waiting for a second campaigner's
# approval is still a draft to an integrator; an A/B test waiting for its winner, or a paused
# send, is still going out.
MESSAGE_STATUSES = {
    Mailing.Status.DRAFT: "draft",
    Mailing.Status.AWAITING_APPROVAL: "draft",
    Mailing.Status.SCHEDULED: "scheduled",
    Mailing.Status.SENDING: "sending",
    Mailing.Status.WAITING_FOR_WINNER: "sending",
    Mailing.Status.PAUSED: "sending",
    Mailing.Status.SENT: "sent",
    Mailing.Status.CANCELLED: "cancelled",
}

# A message's `statistics` as Action Network names them, each one of the report's figures
# (mailings/report_figures.py says what each counts): `actions` are the signatures the mailing
# brought, `unsubscribed` counts complaints too, as the report does, and `bounced` the hard
# bounces (a soft bounce is retried, not lost).
STATISTICS_FIGURES = {
    "sent": "sent",
    "opened": "opens",
    "clicked": "unique_clicks",
    "actions": "signatures",
    "unsubscribed": "unsubscribes",
    "bounced": "hard_bounces",
    "spam_reports": "complaints",
}
_STATISTIC_ATTRIBUTE = "statistic_{}"


def api_href(base_url: str, *parts: object) -> str:
    """Return the absolute URL of a resource under the API's base URL, with no trailing slash."""
    return "/".join([base_url, *(str(part) for part in parts)])


def _link(base_url: str, *parts: object) -> dict[str, str]:
    return link(api_href(base_url, *parts))


# Petitions ----------------------------------------------------------------------------------


def petition_representation(
    petition: Petition, *, base_url: str, total_signatures: int | None = None
) -> dict:
    """Return a petition as an OSDI petition, with links to its signatures and its helper.

    `total_signatures` is the public count (campaigns.counters.petition_count, confirmed
    signatures); given none, the field is left out rather than counted here.
    """
    representation = {
        "identifiers": [f"{NAMESPACE}:{petition.pk}"],
        "origin_system": ORIGIN_SYSTEM,
        "name": petition.slug,
        "title": petition.title,
        "description": petition.body,
        "petition_text": petition.body,
        "target": [{"name": petition.target}] if petition.target else [],
        "browser_url": settings.SITE_URL + petition.get_absolute_url(),
        "languages_spoken": [petition.language],
        "created_date": iso_datetime(petition.created_at),
        # A petition keeps no time of its last change: its making is the latest known.
        "modified_date": iso_datetime(petition.created_at),
        "rally:is_open": petition.is_open,
        "rally:requires_confirmation": petition.requires_confirmation,
        "rally:goal": petition.goal,
    }
    if total_signatures is not None:
        representation["total_signatures"] = total_signatures
    signatures = _link(base_url, "petitions", petition.pk, "signatures")
    representation["_links"] = {
        "self": _link(base_url, "petitions", petition.pk),
        "osdi:signatures": signatures,
        "osdi:record_signature_helper": signatures,
        "curies": curies(base_url),
    }
    return representation


# Signatures ---------------------------------------------------------------------------------


def signature_modified_at(signature: Signature) -> datetime:
    """Return when a signature last changed: its confirmation, or else its making."""
    return signature.confirmed_at or signature.created_at


def signature_representation(signature: Signature, *, base_url: str) -> dict:
    """Return a signature as an OSDI signature, linked to its petition and its person.

    Reads the signature's supporter for their public id: select_related("supporter") spares
    the query. An erased supporter's signature names no person (the API answers 410 for them);
    the API's lists leave such signatures out.
    """
    supporter: Supporter = signature.supporter
    links = {
        "self": _link(base_url, "petitions", signature.petition_id, "signatures", signature.pk),
        "osdi:petition": _link(base_url, "petitions", signature.petition_id),
    }
    representation = {
        "identifiers": [f"{NAMESPACE}:{signature.pk}"],
        "origin_system": ORIGIN_SYSTEM,
        "created_date": iso_datetime(signature.created_at),
        "modified_date": iso_datetime(signature_modified_at(signature)),
        "action_network:petition_id": str(signature.petition_id),
        # Where the signature came from: a share ref ("whatsapp"), or the source an integrator
        # gave in `referrer_data`.
        "action_network:referrer_data": {"source": signature.source},
        "rally:confirmed": signature.confirmed_at is not None,
        "rally:consented": signature.consented,
    }
    if supporter.status != Supporter.Status.ERASED:
        representation["action_network:person_id"] = str(supporter.uuid)
        links["osdi:person"] = link(person_href(supporter.uuid, base_url=base_url))
    links["curies"] = curies(base_url)
    representation["_links"] = links
    return representation


# Messages -----------------------------------------------------------------------------------


def messages_with_statistics(mailings: QuerySet[Mailing]) -> QuerySet[Mailing]:
    """Return the mailings with their `statistics` read from their reports' counters.

    The report counts as events arrive (mailings/report_counts.py); each figure here is a sum
    over a mailing's hours, a few hundred indexed rows at most whatever the size of its ledger,
    made in the same query as the page of mailings.
    """
    sums = {}
    for figure in sorted(set(STATISTICS_FIGURES.values())):
        hours = (
            ReportHour.objects.filter(mailing_id=OuterRef("pk"))
            .values("mailing_id")
            .annotate(total=Sum(figure))
            .values("total")
        )
        sums[_STATISTIC_ATTRIBUTE.format(figure)] = Coalesce(
            Subquery(hours, output_field=IntegerField()), 0
        )
    return mailings.annotate(**sums)


def message_statistics(mailing: Mailing) -> dict[str, int]:
    """Return a mailing's `statistics`: from messages_with_statistics, or else read here."""
    if not hasattr(mailing, _STATISTIC_ATTRIBUTE.format("sent")):
        mailing = messages_with_statistics(Mailing.objects.filter(pk=mailing.pk)).get()
    return {
        name: getattr(mailing, _STATISTIC_ATTRIBUTE.format(figure))
        for name, figure in STATISTICS_FIGURES.items()
    }


def message_representation(mailing: Mailing, *, base_url: str) -> dict:
    """Return a mailing as an OSDI message, with its report's figures as `statistics`.

    A mailing read through messages_with_statistics costs no query here; any other, one.
    """
    representation = {
        "identifiers": [f"{NAMESPACE}:{mailing.pk}"],
        "origin_system": ORIGIN_SYSTEM,
        "name": mailing.name,
        "subject": mailing.subject,
        "body": mailing.html_body,
        "from": mailing.from_name,
        "reply_to": mailing.reply_to or mailing.from_email,
        "type": "email",
        "status": MESSAGE_STATUSES.get(mailing.status, mailing.status),
        "sent_start_date": iso_datetime(mailing.started_at),
        "statistics": message_statistics(mailing),
        "targets": [],
        "created_date": iso_datetime(mailing.created_at),
        "modified_date": iso_datetime(mailing.updated_at),
        "rally:status": mailing.status,
    }
    links = {"self": _link(base_url, "messages", mailing.pk)}
    if mailing.audience_segment_id is not None:
        target = _link(base_url, "queries", mailing.audience_segment_id)
        representation["targets"] = [target]
        links["osdi:targets"] = [target]
    links["curies"] = curies(base_url)
    representation["_links"] = links
    return representation


# Queries ------------------------------------------------------------------------------------


def query_representation(segment: Segment, *, base_url: str, count: int) -> dict:
    """Return a saved segment as an OSDI query; `count` is its mailable members now."""
    representation = {
        "identifiers": [f"{NAMESPACE}:{segment.pk}"],
        "origin_system": ORIGIN_SYSTEM,
        "name": segment.name,
        "description": segment.description,
        "count": count,
        "created_date": iso_datetime(segment.created_at),
        "modified_date": iso_datetime(segment.updated_at),
        "rally:match": segment.match,
    }
    try:
        admin_path = reverse("admin:supporters_segment_change", args=[segment.pk])
    except NoReverseMatch:  # an admin without the segments' pages
        pass
    else:
        representation["browser_url"] = settings.SITE_URL + admin_path
    representation["_links"] = {
        "self": _link(base_url, "queries", segment.pk),
        "curies": curies(base_url),
    }
    return representation
