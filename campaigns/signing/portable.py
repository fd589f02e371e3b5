"""The portable writer: a batch through the ORM, one request after another (SQLite, any DB).

It obeys the rules in rules.py through the same supporter services the rest of Rally uses;
postgres.py writes the same rules set-based, and tests/campaigns/test_signing_parity.py holds
the two to identical rows.
"""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from campaigns.models import Petition, Signature
from config.db import insert_unless_exists
from supporters.engagement_records import Engaged, engagement_record_engaged
from supporters.services import consent_record_create, supporter_upsert

from . import rules
from .confirm import signature_confirm
from .types import CLOSED, SignatureOutcome, SignatureRequest


def signatures_write_portable(requests: Sequence[SignatureRequest]) -> list[SignatureOutcome]:
    """Record the requests in one transaction, in order; return one outcome per request."""
    with transaction.atomic():
        return [_signature_write_one(request) for request in requests]


def _signature_write_one(request: SignatureRequest) -> SignatureOutcome:
    petition = Petition.objects.filter(pk=request.petition_id, is_open=True).first()
    if petition is None:
        return CLOSED
    signer = request.signer
    awaits = rules.awaits_confirmation(
        requires_confirmation=petition.requires_confirmation, link_proved=request.confirmed
    )
    subscribes = rules.consent_subscribes(
        consent=signer.consent,
        requires_confirmation=petition.requires_confirmation,
        link_proved=request.confirmed,
    )
    supporter, created = supporter_upsert(
        email=signer.email,
        first_name=signer.first_name,
        last_name=signer.last_name,
        country=signer.country,
        postcode=signer.postcode,
        language=signer.language,
        source=request.supporter_source,
        subscribed=subscribes,
    )
    if signer.consent:
        consent_record_create(
            supporter=supporter,
            wording=signer.consent_wording,
            source_url=request.source_url,
            ip=request.ip,
            resubscribe=subscribes and not created,  # a new one starts subscribed already
        )
    now = timezone.now()
    engagement_record_engaged(engaged=Engaged.ACTED, times=[(supporter.pk, now)])
    # The unique (petition, supporter) constraint decides, even between concurrent requests.
    signature_id = insert_unless_exists(
        Signature,
        petition=petition.pk,
        supporter=supporter.pk,
        created_at=now,
        confirmed_at=None if awaits else now,
        mailing=_existing_mailing_id(request.mailing_id),
        source=request.source,
        consented=signer.consent,
    )
    if signature_id is not None:
        return SignatureOutcome(
            created=True, signature_id=signature_id, awaiting_confirmation=awaits
        )
    existing = Signature.objects.only("pk", "confirmed_at").get(
        petition=petition, supporter=supporter
    )
    if not awaits and existing.confirmed_at is None:
        # Signed before without confirming; this signing proves the address (rules.py).
        signature_confirm(signature_id=existing.pk, petition_id=petition.pk)
    return SignatureOutcome(created=False, signature_id=existing.pk)


def _existing_mailing_id(mailing_id: int | None) -> int | None:
    """The mailing to credit, or None once it is deleted (a link outlives its mailing)."""
    # Through the foreign key, so that campaigns need not import mailings (a higher layer).
    mailing_model = Signature._meta.get_field("mailing").related_model
    if mailing_id is None or not mailing_model.objects.filter(pk=mailing_id).exists():
        return None
    return mailing_id
