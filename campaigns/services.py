"""Writes that concern petitions: signing."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from supporters.services import consent_record_create, supporter_upsert

from .models import Petition, Signature


class PetitionClosed(ValidationError):
    """The petition no longer takes signatures."""


@dataclass(frozen=True)
class SignatureInput:
    """What a supporter typed into the sign form, already validated."""

    email: str
    first_name: str
    last_name: str
    country: str = ""
    postcode: str = ""
    consent: bool = False
    language: str = ""


def signature_create(
    *,
    petition: Petition,
    signer: SignatureInput,
    source_url: str = "",
    ip: str | None = None,
    source: str = "",
    mailing_id: int | None = None,
) -> tuple[Signature, bool]:
    """Record a signature in one transaction; return it and whether it is new.

    A second signature by the same supporter is a harmless no-op that returns the first one, so
    the caller can answer identically whether or not the email was known. Consent, when given,
    is recorded with the exact wording shown.
    """
    if not petition.is_open:
        raise PetitionClosed("This petition is closed and no longer takes signatures.")
    with transaction.atomic():
        supporter, _ = supporter_upsert(
            email=signer.email,
            first_name=signer.first_name,
            last_name=signer.last_name,
            country=signer.country,
            postcode=signer.postcode,
            language=signer.language,
            source=source or petition.slug,
            subscribed=signer.consent,
        )
        if signer.consent:
            consent_record_create(
                supporter=supporter, wording=petition.consent_wording, source_url=source_url, ip=ip
            )
        confirmed_at = None if petition.requires_confirmation else timezone.now()
        try:
            with transaction.atomic():
                signature = Signature.objects.create(
                    petition=petition,
                    supporter=supporter,
                    confirmed_at=confirmed_at,
                    mailing_id=mailing_id,
                    source=source,
                )
        except IntegrityError:
            return Signature.objects.get(petition=petition, supporter=supporter), False
    return signature, True
