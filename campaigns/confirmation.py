"""Double opt-in emails: queue, resend and send the link that confirms a signature."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from . import tasks
from .links import make_confirmation_token
from .models import Petition, Signature


def signature_confirmation_send(*, signature_id: int) -> None:
    """Queue the confirmation email of an unconfirmed signature, once the transaction commits."""
    tasks.signature_confirmation_email_task.delay_on_commit(signature_id)


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
    signature_confirmation_send(signature_id=signature.pk)
    return True


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
