"""Render a mailing for one supporter and build the email message.

Campaigners' templates are compiled once per process (see `compiled_mailing`) by an engine that
knows only a short list of harmless tags and Django's filters, and are rendered from a flat dict
of strings: no model instance, setting or request ever reaches a campaigner's template. What
they wrote is set in the base layout, with a plain-text part made from the HTML when none is
written, by mailings/compose.py; the compiled result is rendered per message.
"""

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from anymail.message import AnymailMessage
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import FilterExpression, Node, TextNode, TokenType, VariableNode
from django.template.defaulttags import (
    AutoEscapeControlNode,
    CommentNode,
    FilterNode,
    FirstOfNode,
    IfNode,
    NowNode,
    SpacelessNode,
    TemplateLiteral,
    TemplateTagNode,
    WithNode,
)
from django.urls import reverse
from django_countries import countries

from campaigns.links import make_petition_token
from supporters.tokens import make_unsubscribe_token, unsubscribe_mailto_address_for_token

from .compose import compose_message
from .models import Mailing
from .templatetags.merge_tags import MERGE_TAGS

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

# Filters that would put a supporter's words into the HTML unescaped, or a <script> element.
FORBIDDEN_FILTERS = {"safe", "safeseq", "json_script"}
# Django outputs text written inside a tag ({{ first_name|default:"<b>" }}, {% now "<" %}) as it
# is, unescaped; in the HTML it may not hold what could open an element or close an attribute.
_UNSAFE_IN_HTML = re.compile(r'[<>"]')
_CLOSING_TAGS = {"elif", "else", "endif", "endwith", "endfilter", "endspaceless",
                 "endautoescape", "endcomment"}  # fmt: skip
_NODE_TYPES = (TextNode, VariableNode, IfNode, WithNode, FirstOfNode, FilterNode, NowNode,
               AutoEscapeControlNode, CommentNode, SpacelessNode, TemplateTagNode)  # fmt: skip


def compile_merge_template(source: str, *, html: bool) -> Template:
    """Compile a campaigner's template; raise ValidationError naming each mistake and its line.

    Used by the admin form, so mistakes are caught when the mailing is saved, not mid-send.
    `html` is whether the template's output goes into the HTML part.
    """
    engine = _html_engine if html else _text_engine
    try:
        template = engine.from_string(source)
    except TemplateSyntaxError as error:
        raise ValidationError(_syntax_error_message(error), code="template_syntax") from error
    problems = _template_problems(template, html=html)
    if problems:
        raise ValidationError(
            [ValidationError(problem, code="merge_field") for problem in problems]
        )
    return template


def _syntax_error_message(error: TemplateSyntaxError) -> str:
    # The parser puts the token it failed on into the error; its line is the campaigner's line.
    token = getattr(error, "token", None)
    message = re.sub(r" on line \d+", "", str(error))
    message = message.replace(" Did you forget to register or load this tag?", "")
    if token is None:
        return message
    command = (token.contents.split() or [""])[0]
    if (
        token.token_type == TokenType.BLOCK
        and command
        and command not in MERGE_TAGS
        and command not in _CLOSING_TAGS
    ):
        message = (
            f"{{% {command} %}} is not allowed in a mailing; the tags you may use are "
            + ", ".join(MERGE_TAGS)
            + "."
        )
    return f"Line {token.lineno}: {message}"


def _template_problems(template: Template, *, html: bool) -> list[str]:
    """Name every unknown field, attribute walk and forbidden construct, with its line.

    Relies on Django internals: the attributes in which each allowed tag's node keeps its
    expressions (`filter_expression`, `conditions_nodelists`, `extra_context`, …) and the
    `token` the parser sets on every node. A node type it does not know is refused, and the
    corpus in tests/mailings/test_rendering.py fails if Django moves any of them.
    """
    nodes = template.nodelist.get_nodes_by_type(Node)
    known = set(MERGE_FIELDS)
    for node in nodes:
        if isinstance(node, WithNode):
            known.update(node.extra_context)
        elif isinstance(node, NowNode | FirstOfNode) and node.asvar:
            known.add(node.asvar)
    problems = []
    for node in nodes:
        line = f"Line {node.token.lineno}: " if getattr(node, "token", None) else ""
        if not isinstance(node, _NODE_TYPES):
            problems.append(f"{line}this tag is not allowed in a mailing.")
            continue
        if isinstance(node, AutoEscapeControlNode) and not node.setting:
            problems.append(
                f"{line}{{% autoescape off %}} is not allowed: supporters' names must be escaped."
            )
        if isinstance(node, NowNode) and html and _UNSAFE_IN_HTML.search(node.format_string):
            problems.append(f"{line}{{% now %}} may not write <, > or a double quote.")
        for expression, outputs in _expressions(node):
            problems.extend(
                line + problem
                for problem in _expression_problems(
                    expression, known=known, html_output=html and outputs, node=node
                )
            )
    return list(dict.fromkeys(problems))


def _expressions(node: Node):
    """Yield the node's expressions, each with whether its value is written out."""
    if isinstance(node, VariableNode):
        yield node.filter_expression, True
    elif isinstance(node, IfNode):
        conditions = [condition for condition, _ in node.conditions_nodelists if condition]
        while conditions:
            condition = conditions.pop()
            if isinstance(condition, TemplateLiteral):
                yield condition.value, False
            else:
                # An operator: `first` and, unless it is `not`, `second` (django.template.smartif).
                for side in ("first", "second"):
                    if getattr(condition, side, None) is not None:
                        conditions.append(getattr(condition, side))
    elif isinstance(node, WithNode):
        for expression in node.extra_context.values():
            yield expression, True
    elif isinstance(node, FirstOfNode):
        for expression in node.vars:
            yield expression, True
    elif isinstance(node, FilterNode):
        yield node.filter_expr, True


def _expression_problems(
    expression: FilterExpression, *, known: set[str], html_output: bool, node: Node
) -> list[str]:
    problems = []
    variables = []
    literals = []
    # {% filter %} filters its own output, which it names "var".
    if expression.is_var and not isinstance(node, FilterNode):
        variables.append(expression.var)
    elif isinstance(expression.var, str):
        literals.append(expression.var)
    for function, arguments in expression.filters:
        name = getattr(function, "_filter_name", function.__name__)
        if name in FORBIDDEN_FILTERS:
            problems.append(f"the {name} filter is not allowed in a mailing.")
        for is_variable, argument in arguments:
            (variables if is_variable else literals).append(argument)
    for variable in variables:
        if variable.lookups is None:  # a number, or _("text")
            literals.append(variable.literal)
            continue
        name, *parts = variable.lookups
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"unknown merge field {variable.var}{hint}")
        elif parts:
            problems.append(
                f"{{{{ {variable.var} }}}}: a merge field is plain text with no parts to look "
                f"up; write {{{{ {name} }}}}."
            )
    if html_output:
        problems.extend(
            f"{literal!r} is written out as it is, unescaped: it may not hold <, > or a double "
            "quote in the HTML."
            for literal in literals
            if isinstance(literal, str) and _UNSAFE_IN_HTML.search(literal)
        )
    return problems


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
        self.from_email = f"{mailing.from_name} <{mailing.from_email}>"
        self.reply_to = [mailing.reply_to] if mailing.reply_to else []
        self.versions = {"": _compile_content(mailing, language="")}
        for version in mailing.versions.all():
            self.versions[version.language] = _compile_content(version, language=version.language)
        # The petition URL around the token, resolved once: reverse() per message is a
        # measurable share of the cost. Empty when the mailing promotes no petition.
        self.petition_url_prefix = ""
        if mailing.petition_id:
            path = reverse("campaigns:petition_detail", kwargs={"slug": mailing.petition.slug})
            self.petition_url_prefix = f"{settings.SITE_URL}{path}?t="

    def version_for(self, language: str) -> str:
        """Return the version a reader of `language` gets: theirs if written, else ""."""
        return language if language in self.versions else ""

    def render(self, fields: dict[str, str], version: str = "") -> RenderedMessage:
        templates = self.versions.get(version) or self.versions[""]
        return RenderedMessage(
            subject=" ".join(templates.subject.render(Context(fields, autoescape=False)).split()),
            html=templates.html.render(Context(fields)),
            text=templates.text.render(Context(fields, autoescape=False)),
        )


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
    return CompiledMailing(Mailing.objects.select_related("petition").get(pk=mailing_id))


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
    language: str = "",
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
        "language": language,
        "petition_url": petition_url,
        "unsubscribe_url": unsubscribe_url(supporter_id),
    }


def build_message(
    *,
    compiled: CompiledMailing,
    fields: dict[str, str],
    delivery_id: int,
    connection=None,
    version: str = "",
) -> AnymailMessage:
    """Build one supporter's message in a version, with one-click unsubscribe (RFC 8058)."""
    rendered = compiled.render(fields, version)
    token = fields["unsubscribe_url"].rstrip("/").rsplit("/", 1)[-1]
    # The address itself carries a token (case-proof, unlike the subject's), for mail systems
    # that drop the subject; supporters/inbound.py reads either.
    mailto_address = unsubscribe_mailto_address_for_token(token)
    mailto = f"mailto:{mailto_address}?subject={quote('unsubscribe ' + token)}"
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
