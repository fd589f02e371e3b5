"""Writes that concern petitions: signing, and confirming a signature by email."""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from config.db import insert_unless_exists
from supporters.services import consent_record_create, supporter_upsert

from .counters import petition_count_add
from .links import make_confirmation_token
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
    # The consent wording exactly as shown to the signer, in their language.
    consent_wording: str = ""
    language: str = ""


def signature_create(
    *,
    petition: Petition,
    signer: SignatureInput,
    source_url: str = "",
    ip: str | None = None,
    source: str = "",
    mailing_id: int | None = None,
    confirmed: bool = False,
) -> tuple[Signature, bool]:
    """Record a signature in one transaction; return it and whether it is new.

    A second signature by the same supporter is a harmless no-op that returns the first one, so
    the caller can answer identically whether or not the email was known. Consent, when given,
    is recorded with the exact wording shown.
    """
    if not petition.is_open:
        raise PetitionClosed("This petition is closed and no longer takes signatures.")
    with transaction.atomic():
        supporter, created = supporter_upsert(
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
                supporter=supporter,
                wording=signer.consent_wording or petition.consent_wording,
                source_url=source_url,
                ip=ip,
                resubscribe=not created,  # a new supporter with consent starts subscribed
            )
        needs_confirmation = petition.requires_confirmation and not confirmed
        now = timezone.now()
        values = {
            "petition": petition.pk,
            "supporter": supporter.pk,
            "created_at": now,
            "confirmed_at": None if needs_confirmation else now,
            "mailing": mailing_id,
            "source": source,
        }
        # The unique (petition, supporter) constraint decides, even between concurrent requests.
        signature_id = insert_unless_exists(Signature, **values)
        if signature_id is None:
            existing = Signature.objects.get(petition=petition, supporter=supporter)
            if confirmed and existing.confirmed_at is None:
                # Signed before without confirming; a personal link proves the address now.
                signature_confirm(signature_id=existing.pk)
            return existing, False
        signature = Signature(
            pk=signature_id,
            petition=petition,
            supporter=supporter,
            created_at=now,
            confirmed_at=values["confirmed_at"],
            mailing_id=mailing_id,
            source=source,
        )
        signature._state.adding = False
        if needs_confirmation:
            signature_confirmation_send(signature=signature)
        else:
            transaction.on_commit(lambda: petition_count_add(petition.pk))
    return signature, True


def signature_confirmation_send(*, signature: Signature) -> None:
    """Queue the confirmation email of an unconfirmed signature, once the transaction commits."""
    from . import tasks  # tasks import this module

    signature_id = signature.pk
    transaction.on_commit(lambda: tasks.signature_confirmation_email_task.delay(signature_id))


def signature_confirmation_resend(*, petition: Petition, email: str) -> bool:
    """Queue the confirmation email again for this email's unconfirmed signature, if there is one.

    The caller answers the same either way, so that nobody learns who signed.
    """
    signature = (
        Signature.objects.filter(
            petition=petition, supporter__email=email, confirmed_at__isnull=True
        )
        .only("pk")
        .first()
    )
    if signature is None:
        return False
    signature_confirmation_send(signature=signature)
    return True


def signature_confirm(*, signature_id: int) -> Signature | None:
    """Confirm a signature; return it, or None when no such signature exists.

    Idempotent and race-free: only a missing confirmation time is set, so a link clicked twice
    (or by two tabs at once) counts once.
    """
    with transaction.atomic():
        confirmed = Signature.objects.filter(pk=signature_id, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
        signature = Signature.objects.select_related("petition").filter(pk=signature_id).first()
        if confirmed and signature is not None:
            petition_id = signature.petition_id
            transaction.on_commit(lambda: petition_count_add(petition_id))
    return signature


def signature_confirmation_email_send(*, signature_id: int) -> bool:
    """Send the confirmation email of a signature still unconfirmed; return whether it went."""
    signature = (
        Signature.objects.select_related("petition", "supporter")
        .filter(pk=signature_id, confirmed_at__isnull=True)
        .first()
    )
    if signature is None:
        return False  # confirmed meanwhile, or deleted: nothing to ask
    supporter = signature.supporter
    path = reverse(
        "campaigns:petition_confirm",
        kwargs={
            "slug": signature.petition.slug,
            "token": make_confirmation_token(signature_id=signature.pk),
        },
    )
    context = {
        "first_name": supporter.first_name,
        "petition_title": signature.petition.title,
        "confirm_url": f"{settings.SITE_URL}{path}",
        "valid_days": settings.RALLY_CONFIRMATION_MAX_AGE_DAYS,
    }
    # In the language the supporter signed in.
    with translation.override(supporter.language or settings.LANGUAGE_CODE):
        subject = render_to_string("campaigns/email/confirm_subject.txt", context)
        text = render_to_string("campaigns/email/confirm_body.txt", context)
        html = render_to_string("campaigns/email/confirm_body.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()), body=text, to=[supporter.email]
    )
    message.attach_alternative(html, "text/html")
    message.send()
    return True
