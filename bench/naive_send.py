"""Send a mailing the naive way: the yardstick `bench_send --baseline` measures Rally against.

What a Django app without a send queue would do: one process (the caller's), one connection
through Django's SMTP EmailBackend, the mailing's content compiled once by Django's template
engine and `Template.render` per recipient, an `EmailMultiAlternatives` per recipient, and
`send_messages` in lists of 500, the recipients read by iterating a queryset.

The content is what Rally sends, made the same way: the campaigner's HTML set in the layout with
its CSS inlined and the plain text beside it (mailings/content/compose.py). What Rally adds per
message and the naive loop does not: signed tokens in the petition and unsubscribe links (plain
ids here), tracked links and the open pixel, the ledger, the claim and the rules.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.template import Context, Engine, Template
from django.urls import reverse

from mailings.content.compose import compose_message
from mailings.models import Mailing
from supporters.models import Supporter

MESSAGES_PER_CALL = 500


@dataclass(frozen=True)
class NaiveTemplates:
    subject: Template
    html: Template
    text: Template


def naive_templates(mailing: Mailing) -> NaiveTemplates:
    """Compile a mailing's subject and composed bodies with Django's engine, as a project has it.

    `Engine()` is the default engine's configuration with DEBUG off: Django's tags and filters,
    autoescaping on.
    """
    composed = compose_message(
        preheader=mailing.preheader, html_body=mailing.html_body, text_body=mailing.text_body
    )
    engine = Engine()
    return NaiveTemplates(
        subject=engine.from_string(mailing.subject),
        html=engine.from_string(composed.html),
        text=engine.from_string(composed.text),
    )


def naive_send(*, mailing: Mailing, supporters: Iterable[Supporter], host: str, port: int) -> int:
    """Send `mailing` to each of `supporters` over SMTP at host:port; return how many were sent."""
    templates = naive_templates(mailing)
    from_email = f"{mailing.from_name} <{mailing.from_email}>"
    reply_to = [mailing.reply_to] if mailing.reply_to else []
    petition_url = settings.SITE_URL + reverse(
        "campaigns:petition_detail", kwargs={"slug": mailing.petition.slug}
    )
    unsubscribe_url = settings.SITE_URL + reverse("supporters:unsubscribe", kwargs={"token": "T"})
    unsubscribe_before, _, unsubscribe_after = unsubscribe_url.partition("/T/")
    connection = EmailBackend(
        host=host, port=port, username="", password="", use_tls=False, use_ssl=False
    )
    connection.open()
    sent = 0
    pending: list[EmailMultiAlternatives] = []
    try:
        for supporter in supporters:
            personal_unsubscribe_url = (
                f"{unsubscribe_before}/{supporter.pk}-{mailing.pk}/{unsubscribe_after}"
            )
            fields = {
                "first_name": supporter.first_name,
                "last_name": supporter.last_name,
                "full_name": f"{supporter.first_name} {supporter.last_name}".strip(),
                "email": supporter.email,
                "country": supporter.country.name if supporter.country else "",
                "language": supporter.language,
                "petition_url": f"{petition_url}?ref={supporter.pk}-{mailing.pk}",
                "unsubscribe_url": personal_unsubscribe_url,
            }
            subject = templates.subject.render(Context(fields, autoescape=False))
            message = EmailMultiAlternatives(
                subject=" ".join(subject.split()),
                body=templates.text.render(Context(fields, autoescape=False)),
                from_email=from_email,
                to=[supporter.email],
                reply_to=reply_to,
                connection=connection,
                headers={
                    "List-Unsubscribe": f"<{personal_unsubscribe_url}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            )
            message.attach_alternative(templates.html.render(Context(fields)), "text/html")
            pending.append(message)
            if len(pending) == MESSAGES_PER_CALL:
                sent += connection.send_messages(pending)
                pending = []
        if pending:
            sent += connection.send_messages(pending)
    finally:
        connection.close()
    return sent
