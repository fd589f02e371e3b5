"""Render a mailing for one supporter and build the email message.

Campaigners' templates are compiled once per process (see `compiled_mailing`) by an engine that
knows only a short list of harmless tags and Django's filters, and are rendered from a flat dict
of strings: no model instance, setting or request ever reaches a campaigner's template. What
they wrote is set in the base layout, with a plain-text part made from the HTML when none is
written, by mailings/content/compose.py; the compiled result is rendered per message.
"""

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from anymail.message import AnymailMessage
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.urls import reverse
from django_countries import countries

from campaigns.links import PETITION_TOKEN_PARAMETER, make_petition_token
from mailings.content.compose import compose_message
from mailings.content.substitution import Substitution, substitution_of
from mailings.content.template_checks import syntax_error_message, template_problems
from mailings.content.tracked_links import MailingLinks
from mailings.models import Mailing
from supporters.models import Supporter
from supporters.tokens import make_unsubscribe_token, unsubscribe_mailto_address_for_token

MERGE_FIELDS = {
    "first_name": 'The first name; may be empty, so try {{ first_name|default:"friend" }}',
    "last_name": "The supporter's last name",
    "full_name": "First and last name together",
    "email": "The supporter's email address",
    "country": "The supporter's country, by name",
    "language": "The supporter's language code, such as en or ru",
    "petition_url": "A personal link to the mailing's petition; signatures are credited to it",
    "unsubscribe_url": "The supporter's one-click unsubscribe page",
}


class MergeFieldEngine(Engine):
    """A template engine with Django's filters and only the tags in merge_tags, loading nothing."""

    default_builtins = ["django.template.defaultfilters", "mailings.templatetags.merge_tags"]


_html_engine = MergeFieldEngine(loaders=[], libraries={}, autoescape=True)
_text_engine = MergeFieldEngine(loaders=[], libraries={}, autoescape=False)


def compile_merge_template(source: str, *, html: bool) -> Template:
    """Compile a campaigner's template; raise ValidationError naming each mistake and its line.

    Used by the admin form, so mistakes are caught when the mailing is saved, not mid-send.
    `html` is whether the template's output goes into the HTML part.
    """
    engine = _html_engine if html else _text_engine
    try:
        template = engine.from_string(source)
    except TemplateSyntaxError as error:
        raise ValidationError(syntax_error_message(error), code="template_syntax") from error
    problems = template_problems(template, html=html, known_fields=MERGE_FIELDS)
    if problems:
        raise ValidationError(
            [ValidationError(problem, code="merge_field") for problem in problems]
        )
    return template


@dataclass(frozen=True)
class MailingTemplates:
    subject: Template
    html: Template
    text: Template


def compile_mailing(
    *, subject: str, preheader: str, html_body: str, text_body: str, language: str = ""
) -> MailingTemplates:
    """Compile a mailing's templates, layout included; raise ValidationError keyed by field.

    The admin form calls it, so a mailing that saves is one that compiles when it is sent;
    CompiledMailing calls it to send. Each field is checked on its own first, so an error names
    the campaigner's own line.
    """
    errors = {}
    for field, source, html in (
        ("subject", subject, False),
        ("preheader", preheader, True),
        ("html_body", html_body, True),
        ("text_body", text_body, False),
    ):
        try:
            compile_merge_template(source, html=html)
        except ValidationError as error:
            errors[field] = error
    if errors:
        raise ValidationError(errors)
    try:
        message = compose_message(
            preheader=preheader, html_body=html_body, text_body=text_body, language=language
        )
    except ValidationError as error:
        raise ValidationError({"html_body": error}) from error
    return MailingTemplates(
        subject=compile_merge_template(subject, html=False),
        html=compile_merge_template(message.html, html=True),
        text=compile_merge_template(message.text, html=False),
    )


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str


class CompiledMailing:
    """A mailing's templates compiled once, each language version's too, and what all share.

    Versions are keyed by language; "" is the mailing's own (default) content.
    """

    def __init__(self, mailing: Mailing):
        self.mailing_id = mailing.pk
        self._substitutions: dict[tuple[int, bool], Substitution | None] = {}
        self.from_email = f"{mailing.from_name} <{mailing.from_email}>"
        self.reply_to = [mailing.reply_to] if mailing.reply_to else []
        contents = {
            "": mailing,
            **{version.language: version for version in mailing.versions.all()},
        }
        self.versions = {
            language: _compile_content(content, language=language)
            for language, content in contents.items()
        }
        # Links go through the click redirect, and the HTML gets an open pixel.
        self.links = MailingLinks(self.mailing_id)
        for language, templates in self.versions.items():
            self.versions[language] = self.links.track(language, templates)
        self._compile_variants(mailing, contents)
        # The petition URL around the token, resolved once: reverse() per message is a
        # measurable share of the cost. Empty when the mailing promotes no petition.
        self.petition_url_prefix = ""
        self.petition_id = mailing.petition_id
        if mailing.petition_id:
            path = reverse("campaigns:petition_detail", kwargs={"slug": mailing.petition.slug})
            self.petition_url_prefix = f"{settings.SITE_URL}{path}?{PETITION_TOKEN_PARAMETER}="

    def _compile_variants(self, mailing: Mailing, contents: dict) -> None:
        """Compile what each A/B variant changes, by (version, label); A is the content itself.

        A variant that changes only the subject shares its version's bodies; one that changes
        the preheader, which the layout sets in the HTML, is compiled whole.
        """
        self.variant_versions: dict[tuple[str, str], MailingTemplates] = {}
        self.variant_senders: dict[tuple[str, str], str] = {}
        for variant in mailing.variants.all():
            content = contents.get(variant.language)
            if content is None:
                # A row for a language version since deleted: its readers get the default.
                continue
            key = (variant.language, variant.label)
            if variant.from_name:
                # On one line, as the subject is: a line break in a header fails the message.
                from_name = " ".join(variant.from_name.split())
                self.variant_senders[key] = f"{from_name} <{mailing.from_email}>"
            if variant.preheader:
                templates = compile_mailing(
                    subject=variant.subject or content.subject,
                    preheader=variant.preheader,
                    html_body=content.html_body,
                    text_body=content.text_body,
                    language=variant.language,
                )
                self.variant_versions[key] = self.links.track(variant.language, templates)
            elif variant.subject:
                self.variant_versions[key] = dataclasses.replace(
                    self.versions[variant.language],
                    subject=compile_merge_template(variant.subject, html=False),
                )

    def version_for(self, language: str) -> str:
        """Return the version a reader of `language` gets: theirs if written, else ""."""
        return language if language in self.versions else ""

    def sender_for(self, version: str = "", variant: str = "") -> str:
        """Return the From header of a version in a variant: the version's own sender name, if
        the variant names one there, else the variant's, else the mailing's."""
        return (
            self.variant_senders.get((version, variant))
            or self.variant_senders.get(("", variant))
            or self.from_email
        )

    def render(
        self,
        fields: dict[str, str],
        version: str = "",
        *,
        variant: str = "",
        tracked_supporter_id: int | None = None,
    ) -> RenderedMessage:
        """Render a version in an A/B variant; its links tracked as `tracked_supporter_id`'s, or
        as written. A variant that changes nothing in this version renders the version itself.
        """
        version = version if version in self.versions else ""
        templates = self.variant_versions.get((version, variant)) or self.versions[version]
        body_fields = fields | self.links.message_fields(
            fields, version=version, supporter_id=tracked_supporter_id
        )
        return RenderedMessage(
            subject=" ".join(self._render(templates.subject, fields, autoescape=False).split()),
            html=self._render(templates.html, body_fields, autoescape=True),
            text=self._render(templates.text, body_fields, autoescape=False),
        )

    def _render(self, template: Template, fields: dict[str, str], *, autoescape: bool) -> str:
        """Render a template by substitution where its shape allows, else by Django."""
        key = (id(template), autoescape)
        try:
            substitution = self._substitutions[key]
        except KeyError:
            # Keyed by identity: the templates live as long as this object does.
            substitution = self._substitutions[key] = substitution_of(
                template, autoescape=autoescape
            )
        if substitution is None:
            return template.render(Context(fields, autoescape=autoescape))
        return substitution.render(fields)


def _compile_content(content, *, language: str) -> MailingTemplates:
    """Compile a Mailing's or a MailingVersion's subject, preheader and bodies."""
    return compile_mailing(
        subject=content.subject,
        preheader=content.preheader,
        html_body=content.html_body,
        text_body=content.text_body,
        language=language,
    )


@lru_cache(maxsize=32)
def _compiled(mailing_id: int, updated_at) -> CompiledMailing:
    return CompiledMailing(
        Mailing.objects.select_related("petition")
        .prefetch_related("versions", "variants")
        .get(pk=mailing_id)
    )


def compiled_mailing(mailing: Mailing) -> CompiledMailing:
    """Return the process-wide compiled form of a mailing, recompiled if it was edited.

    Saving a language version in the admin saves its mailing too, which moves `updated_at`.
    """
    return _compiled(mailing.pk, mailing.updated_at)


@lru_cache(maxsize=1)
def _unsubscribe_url_parts() -> tuple[str, str]:
    # Resolved once per process: the URL around the token never changes.
    url = settings.SITE_URL + reverse("supporters:unsubscribe", kwargs={"token": "TOKEN"})
    before, _, after = url.partition("TOKEN")
    return before, after


def unsubscribe_url(supporter_id: int, mailing_id: int | None = None) -> str:
    """Return the absolute one-click unsubscribe URL of a supporter, in a mailing's message.

    Its token names the mailing, so an unsubscribe through it is counted in its report.
    """
    before, after = _unsubscribe_url_parts()
    return before + make_unsubscribe_token(supporter_id, mailing_id) + after


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
    language: str = "",
) -> dict[str, str]:
    """Return the flat dict of strings a mailing's templates are rendered from."""
    petition_url = ""
    if compiled.petition_url_prefix:
        token = make_petition_token(
            supporter_id=supporter_id,
            mailing_id=compiled.mailing_id,
            petition_id=compiled.petition_id,
        )
        petition_url = compiled.petition_url_prefix + token
    return {
        "first_name": first_name,
        "last_name": last_name,
        "full_name": f"{first_name} {last_name}".strip(),
        "email": email,
        "country": country_name(country),
        "language": language,
        "petition_url": petition_url,
        "unsubscribe_url": unsubscribe_url(supporter_id, compiled.mailing_id),
    }


def supporter_merge_fields(compiled: CompiledMailing, supporter: Supporter) -> dict[str, str]:
    """Return a supporter's merge fields as the send queue makes them from its claimed row.

    For what renders one supporter outside a send: previews, test copies, the click redirect.
    """
    return merge_fields(
        compiled=compiled,
        supporter_id=supporter.pk,
        email=supporter.email,
        first_name=supporter.first_name,
        last_name=supporter.last_name,
        country=str(supporter.country or ""),
        language=supporter.language,
    )


# The made-up supporter that previews and test copies are rendered as for those who may not see
# a real supporter's details (mailings/admin_views/preview.py).
SAMPLE_SUPPORTER = {"first_name": "Alex", "last_name": "Sample", "email": "alex.sample@example.org"}


def sample_merge_fields(compiled: CompiledMailing, *, language: str = "") -> dict[str, str]:
    """Return the merge fields of the made-up sample supporter, whose links name nobody.

    The petition link is the petition's page without a personal token, and the unsubscribe
    link's token is no token, so it leads to the page that says the link does not work.
    """
    before, after = _unsubscribe_url_parts()
    return {
        **SAMPLE_SUPPORTER,
        "full_name": f"{SAMPLE_SUPPORTER['first_name']} {SAMPLE_SUPPORTER['last_name']}",
        "country": country_name("GB"),
        "language": language,
        "petition_url": compiled.petition_url_prefix.split("?", 1)[0],
        "unsubscribe_url": f"{before}sample{after}",
    }


def build_message(
    *,
    compiled: CompiledMailing,
    fields: dict[str, str],
    delivery_id: int,
    connection=None,
    version: str = "",
    variant: str = "",
    tracked_supporter_id: int | None = None,
) -> AnymailMessage:
    """Build one supporter's message in a version, with one-click unsubscribe (RFC 8058).

    A bulk message gives `tracked_supporter_id`, its links then go through the click redirect
    and it carries an open pixel (mailings/content/tracked_links.py); previews and test copies
    do not.
    """
    rendered = compiled.render(
        fields, version, variant=variant, tracked_supporter_id=tracked_supporter_id
    )
    token = fields["unsubscribe_url"].rstrip("/").rsplit("/", 1)[-1]
    # The address itself carries a token (case-proof, unlike the subject's), for mail systems
    # that drop the subject; supporters/inbound.py reads either.
    mailto_address = unsubscribe_mailto_address_for_token(token)
    mailto = f"mailto:{mailto_address}?subject={quote('unsubscribe ' + token)}"
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=compiled.sender_for(version, variant),
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
