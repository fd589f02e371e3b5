"""Render a mailing for one supporter and build the email message.

Campaigners' templates are compiled once per process (see `compiled_mailing`) by an engine that
knows only a short list of harmless tags and Django's filters, and are rendered from a flat dict
of strings: no model instance, setting or request ever reaches a campaigner's template.
"""

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from anymail.message import AnymailMessage
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import VariableNode
from django.urls import reverse
from django.utils.html import escape
from django_countries import countries

from campaigns.links import make_petition_token
from supporters.tokens import make_unsubscribe_token

from .models import Mailing

MERGE_FIELDS = {
    "first_name": 'The first name; may be empty, so try {{ first_name|default:"friend" }}',
    "last_name": "The supporter's last name",
    "full_name": "First and last name together",
    "email": "The supporter's email address",
    "country": "The supporter's country, by name",
    "petition_url": "A personal link to the mailing's petition; signatures are credited to it",
    "unsubscribe_url": "The supporter's one-click unsubscribe page",
}


class MergeFieldEngine(Engine):
    """A template engine with Django's filters and only the tags in merge_tags, loading nothing."""

    default_builtins = ["django.template.defaultfilters", "mailings.templatetags.merge_tags"]


_html_engine = MergeFieldEngine(loaders=[], libraries={}, autoescape=True)
_text_engine = MergeFieldEngine(loaders=[], libraries={}, autoescape=False)


def compile_merge_template(source: str, *, html: bool) -> Template:
    """Compile a campaigner's template; raise ValidationError naming what is wrong.

    Used by the admin form, so mistakes are caught when the mailing is saved, not mid-send.
    """
    engine = _html_engine if html else _text_engine
    try:
        template = engine.from_string(source)
    except TemplateSyntaxError as error:
        raise ValidationError(f"Template error: {error}") from error
    unknown = sorted(
        {
            node.filter_expression.var.var
            for node in template.nodelist.get_nodes_by_type(VariableNode)
            if hasattr(node.filter_expression.var, "var")
            and node.filter_expression.var.var.split(".")[0] not in MERGE_FIELDS
        }
    )
    if unknown:
        raise ValidationError(
            "Unknown merge field(s): %(unknown)s. Available: %(available)s.",
            params={"unknown": ", ".join(unknown), "available": ", ".join(MERGE_FIELDS)},
        )
    return template


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str


class CompiledMailing:
    """A mailing's templates compiled once, and what every message of it shares."""

    def __init__(self, mailing: Mailing):
        self.mailing_id = mailing.pk
        self.from_email = f"{mailing.from_name} <{mailing.from_email}>"
        self.reply_to = [mailing.reply_to] if mailing.reply_to else []
        self.subject = compile_merge_template(mailing.subject, html=False)
        self.text = compile_merge_template(mailing.text_body, html=False)
        # The preheader is the first text in the body, hidden, so inboxes show it as a preview.
        preheader = ""
        if mailing.preheader:
            preheader = (
                '<div style="display:none;max-height:0;overflow:hidden;">'
                f"{escape(mailing.preheader)}</div>"
            )
        self.html = compile_merge_template(preheader + mailing.html_body, html=True)
        # The petition URL around the token, resolved once: reverse() per message is a
        # measurable share of the cost. Empty when the mailing promotes no petition.
        self.petition_url_prefix = ""
        if mailing.petition_id:
            path = reverse("campaigns:petition_detail", kwargs={"slug": mailing.petition.slug})
            self.petition_url_prefix = f"{settings.SITE_URL}{path}?t="

    def render(self, fields: dict[str, str]) -> RenderedMessage:
        return RenderedMessage(
            subject=" ".join(self.subject.render(Context(fields, autoescape=False)).split()),
            html=self.html.render(Context(fields)),
            text=self.text.render(Context(fields, autoescape=False)),
        )


@lru_cache(maxsize=32)
def _compiled(mailing_id: int, updated_at) -> CompiledMailing:
    return CompiledMailing(Mailing.objects.select_related("petition").get(pk=mailing_id))


def compiled_mailing(mailing: Mailing) -> CompiledMailing:
    """Return the process-wide compiled form of a mailing, recompiled if it was edited."""
    return _compiled(mailing.pk, mailing.updated_at)


@lru_cache(maxsize=1)
def _unsubscribe_url_parts() -> tuple[str, str]:
    # Resolved once per process: the URL around the token never changes.
    url = settings.SITE_URL + reverse("supporters:unsubscribe", kwargs={"token": "TOKEN"})
    before, _, after = url.partition("TOKEN")
    return before, after


def unsubscribe_url(supporter_id: int) -> str:
    """Return the absolute one-click unsubscribe URL of a supporter."""
    before, after = _unsubscribe_url_parts()
    return before + make_unsubscribe_token(supporter_id) + after


@lru_cache(maxsize=512)
def country_name(code: str) -> str:
    return str(countries.name(code)) if code else ""


def merge_fields(
    *,
    compiled: CompiledMailing,
    supporter_id: int,
    email: str,
    first_name: str,
    last_name: str,
    country: str,
) -> dict[str, str]:
    """Return the flat dict of strings a mailing's templates are rendered from."""
    petition_url = ""
    if compiled.petition_url_prefix:
        token = make_petition_token(supporter_id=supporter_id, mailing_id=compiled.mailing_id)
        petition_url = compiled.petition_url_prefix + token
    return {
        "first_name": first_name,
        "last_name": last_name,
        "full_name": f"{first_name} {last_name}".strip(),
        "email": email,
        "country": country_name(country),
        "petition_url": petition_url,
        "unsubscribe_url": unsubscribe_url(supporter_id),
    }


def build_message(
    *, compiled: CompiledMailing, fields: dict[str, str], delivery_id: int, connection=None
) -> AnymailMessage:
    """Build one supporter's message, with one-click unsubscribe headers (RFC 8058)."""
    rendered = compiled.render(fields)
    token = fields["unsubscribe_url"].rstrip("/").rsplit("/", 1)[-1]
    mailto = f"mailto:{settings.UNSUBSCRIBE_MAILTO}?subject={quote('unsubscribe ' + token)}"
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=compiled.from_email,
        to=[fields["email"]],
        reply_to=compiled.reply_to,
        connection=connection,
        headers={
            "List-Unsubscribe": f"<{fields['unsubscribe_url']}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        # Webhook events carry the metadata back, naming the ledger row they are about.
        metadata={"delivery_id": str(delivery_id), "mailing_id": str(compiled.mailing_id)},
    )
    message.attach_alternative(rendered.html, "text/html")
    return message
