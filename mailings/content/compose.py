"""Make the template source of a whole message from what the campaigner wrote.

The HTML body's `<style>` is inlined into style attributes (css-inline: many mail clients drop
`<style>`), the result is sanitised again, and the base layout
(templates/mailings/email/layout.html) sets it in one column with the preheader and a footer:
the organisation, its postal address and an unsubscribe link. The plain-text part is the
campaigner's own, or is made from that HTML (inscriptis) with links kept as visible URLs; it
gets the same footer (layout.txt).

All of it works on template source, merge fields in place, so it runs when a mailing is saved
and when a worker first compiles it (mailings/content/rendering.py), never once per message.
While the HTML is parsed and written out again, each template tag is swapped for a placeholder
word, so no parser can escape, reorder or drop one unnoticed, and an entity such as `&#123;`
that a parser decodes can never become a tag of its own.
"""

import re
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.base import Lexer, TokenType
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import mark_safe

from config.lib.richtext import css_is_unsafe, sanitize_html

LAYOUT_HTML = "mailings/email/layout.html"
LAYOUT_TEXT = "mailings/email/layout.txt"

# The look of the editor's markup (a link with class="button" is the call to action): set
# before the body's own <style>, which therefore wins over it, as its style attributes do.
BODY_CSS = "mailings/email/body.css"
# A "{" that could start a tag ("{{", "{%", "{#") but is text is written as one of these, so
# the merge-field engine shows it instead of reading a tag: an HTML entity in the HTML (the
# campaigner sees what they wrote, and a <style>'s own braces are never touched), and a tag in
# the plain text.
_TAG_BRACE = re.compile(r"\{(?=[{%#]|$)")
HTML_BRACE = "&#123;"
OPEN_BRACE = "{% templatetag openbrace %}"
# The sanitiser writes <style> elements out whole, and nothing inside one can close it early.
_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)
# The merge fields that hold a whole URL Rally makes itself: the only ones that may begin a
# link's address. Any other field there could make it any address, a javascript: one included.
URL_MERGE_FIELDS = ("petition_url", "unsubscribe_url")
# The attributes the sanitiser keeps that hold a URL (config/lib/richtext.py).
_URL_ATTRIBUTES = {"href", "src"}
# What may spell a URL's scheme: a merge field after only these could still complete one.
_SCHEME_SO_FAR = re.compile(r"[A-Za-z0-9+.\-]*")


@dataclass(frozen=True)
class ComposedMessage:
    """A message's template source, layout included: what the merge-field engine compiles."""

    html: str
    text: str


def compose_message(
    *, preheader: str, html_body: str, text_body: str, language: str = ""
) -> ComposedMessage:
    """Return the template source of a whole message; raise ValidationError naming the line.

    `language` is the language of the layout's own words (the footer), by default the site's.
    """
    body = _Placeholders(html_body)
    body.refuse_tags_between_table_cells()
    html = sanitize_html(_css_inliner().inline(_body_style() + body.source))
    body.refuse_merge_fields_that_make_a_link(html)
    html_source = body.restore(html, into="HTML", brace=HTML_BRACE)
    if text_body.strip():
        text_source = text_body.strip()
    else:
        text = body.join_tag_lines(_html_to_text(html))
        text_source = body.restore(text, into="plain text", brace=OPEN_BRACE)
    context = {
        "language": language or settings.LANGUAGE_CODE,
        "organisation_name": template_literal(settings.RALLY_ORGANISATION_NAME),
        "organisation_address": template_literal(settings.RALLY_ORGANISATION_ADDRESS),
    }
    with translation.override(context["language"]):
        html_message = render_to_string(
            LAYOUT_HTML,
            {
                **context,
                "body": mark_safe(html_source),  # noqa: S308 -- sanitised just above
                "preheader": mark_safe(_html_escaped_template(preheader)),  # noqa: S308
            },
        )
        text_message = render_to_string(LAYOUT_TEXT, {**context, "body": text_source})
    return ComposedMessage(html=html_message, text=text_message.strip() + "\n")


# css-inline, inscriptis and the lxml it brings are imported on first use, not with this module:
# the admin imports this module in every process, but only a worker compiling a mailing or
# a campaigner saving one composes, and a worker's pool processes would otherwise each hold
# them from start-up (measured in docs/performance.md, "Memory").
@cache
def _css_inliner():
    import css_inline

    # Never the network: a <link rel="stylesheet"> is not fetched (the sanitiser removes it).
    return css_inline.CSSInliner(
        keep_style_tags=False, keep_link_tags=False, load_remote_stylesheets=False
    )


@cache
def _text_config():
    from inscriptis.model.config import ParserConfig

    # Links as "[text](url)": a reader of the text part must still reach the petition.
    return ParserConfig(display_links=True)


@cache
def _body_style() -> str:
    return f"<style>{render_to_string(BODY_CSS)}</style>"


def sanitize_mailing_html(html_body: str) -> str:
    """Return a mailing's HTML body sanitised to be stored, its `<style>` and tags kept.

    Raise ValidationError when the sanitiser would move a tag (text between table rows is
    moved out of the table), rather than store a template that means something else.
    """
    body = _Placeholders(html_body)
    body.refuse_tags_between_table_cells()
    html = sanitize_html(body.source, keep_style_blocks=True)
    for style in _STYLE_BLOCK.findall(html):
        if css_is_unsafe(style):
            raise ValidationError(
                "A <style> holds CSS that some mail clients would run or load from elsewhere "
                "(javascript:, expression(), @import, a backslash escape, or a url() that is "
                "not http or https); take it out."
            )
    return body.restore(html, into="HTML", brace=HTML_BRACE)


def template_literal(text: str) -> str:
    """Return template source that renders as `text` exactly, whatever braces it holds."""
    return _TAG_BRACE.sub(OPEN_BRACE, text)


def _html_escaped_template(source: str) -> str:
    """Return a text template as an HTML one: its text escaped, its tags as they were.

    The preheader is written as plain text, so "Read <this>" must show as written.
    """
    parts = []
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.TEXT:
            parts.append(escape(token.contents))
        else:
            parts.append(_token_source(token))
    return "".join(parts)


def _token_source(token) -> str:
    if token.token_type == TokenType.VAR:
        return "{{ " + token.contents + " }}"
    if token.token_type == TokenType.BLOCK:
        return "{% " + token.contents + " %}"
    return ""  # a {# comment #} renders nothing


@dataclass(frozen=True)
class _Tag:
    source: str
    line: int
    # A block tag ({% if %}) must survive, or the template around it breaks; a variable that an
    # HTML-to-text conversion drops (in an alt or title attribute) is only not shown.
    required: bool


class _Placeholders:
    """A template's source with each tag swapped for a placeholder word, and the way back."""

    def __init__(self, source: str):
        marker = "rallymerge"
        while marker in source.lower():
            marker += "z"
        self.tags: list[_Tag] = []
        parts = []
        for token in Lexer(source).tokenize():
            if token.token_type == TokenType.TEXT:
                parts.append(token.contents)
            elif token.token_type != TokenType.COMMENT:
                parts.append(f"{marker}{len(self.tags)}x")
                self.tags.append(
                    _Tag(
                        source=_token_source(token),
                        line=token.lineno,
                        required=token.token_type == TokenType.BLOCK,
                    )
                )
        self.source = "".join(parts)
        self._placeholder = re.compile(re.escape(marker) + r"(\d+)x")

    def refuse_tags_between_table_cells(self) -> None:
        """Raise ValidationError for a tag in a table but outside its cells.

        An HTML parser moves such text out in front of the table, so `{% if %}` around a row
        would wrap nothing; both ends move together, so restore() could not tell.
        """
        finder = _TableTextFinder()
        finder.feed(self.source)
        finder.close()
        for text in finder.between_cells:
            for match in self._placeholder.finditer(text):
                tag = self.tags[int(match[1])]
                raise ValidationError(
                    f"Line {tag.line}: {tag.source} sits in a table but outside its cells, "
                    "where HTML moves it out in front of the table; put it inside a cell, or "
                    "around the whole table."
                )

    def refuse_merge_fields_that_make_a_link(self, html: str) -> None:
        """Raise ValidationError for a tag that could decide where a link or image points.

        A merge field is the supporter's own words: at the start of an href (or within the
        letters of a scheme, "java{{ x }}") it could put a javascript: URL into a sent message,
        and the sanitiser saw only a placeholder there. After a ":", "/", "?" or "#" the scheme
        is written and was checked. Only URL_MERGE_FIELDS, alone, may begin an address.
        """
        finder = _UrlAttributeFinder()
        finder.feed(html)
        finder.close()
        for value in finder.values:
            match = self._placeholder.search(value)
            if match is None:
                continue
            # Browsers drop tabs and line breaks anywhere in a URL, and spaces and controls
            # before it; dropping every one is stricter still.
            before = "".join(c for c in value[: match.start()] if c > " ")
            tag = self.tags[int(match[1])]
            if _SCHEME_SO_FAR.fullmatch(before) is None:
                continue  # the scheme is written out in full, or there is none
            if not before and tag.source in {f"{{{{ {name} }}}}" for name in URL_MERGE_FIELDS}:
                continue
            raise ValidationError(
                f"Line {tag.line}: a link may not begin with {tag.source}: a supporter's "
                "details could make it any address, a javascript: one included. Begin it "
                "with https:// (or mailto:), or make {{ petition_url }} or "
                "{{ unsubscribe_url }} the whole address."
            )

    def join_tag_lines(self, text: str) -> str:
        """Move each line of block tags alone onto the next line of text, blank lines dropped.

        `{% if %}` around whole paragraphs becomes a line of its own in plain text; left there,
        it would leave blank lines behind whenever it renders nothing.
        """
        lines = []
        pending = ""
        for line in text.split("\n"):
            if pending and not line.strip():
                continue
            if self._block_tags_only(line):
                pending += line.strip()
                continue
            lines.append(pending + line)
            pending = ""
        if pending:
            lines.append(pending)
        return "\n".join(lines)

    def _block_tags_only(self, line: str) -> bool:
        indexes = [int(match[1]) for match in self._placeholder.finditer(line)]
        return (
            bool(indexes)
            and not self._placeholder.sub("", line).strip()
            and all(self.tags[index].required for index in indexes)
        )

    def restore(self, converted: str, *, into: str, brace: str) -> str:
        """Put the tags back into `converted`; a "{" of its own that could start one, `brace`."""
        parts = []
        found = []
        position = 0
        for match in self._placeholder.finditer(converted):
            parts.append(_TAG_BRACE.sub(brace, converted[position : match.start()]))
            index = int(match[1])
            parts.append(self.tags[index].source)
            found.append(index)
            position = match.end()
        parts.append(_TAG_BRACE.sub(brace, converted[position:]))
        for previous, index in zip(found, found[1:], strict=False):
            if index <= previous:
                raise ValidationError(
                    f"Line {self.tags[index].line}: {self.tags[index].source} would move in the "
                    f"{into} version; put it inside a paragraph of its own."
                )
        hint = ", or write the plain-text version yourself" if into == "plain text" else ""
        for index, tag in enumerate(self.tags):
            if tag.required and index not in found:
                raise ValidationError(
                    f"Line {tag.line}: {tag.source} sits where the {into} version cannot keep "
                    f"it (inside an attribute or a <style>, say); move it into the text{hint}."
                )
        return "".join(parts)


class _UrlAttributeFinder(HTMLParser):
    """Collect the value of every URL attribute (href, src), character references decoded."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.values: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.values.extend(value or "" for name, value in attrs if name in _URL_ATTRIBUTES)


class _TableTextFinder(HTMLParser):
    """Collect the text that sits in a table but not in a cell (nested tables included)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []  # "table" or "cell", innermost last
        self.between_cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th", "tr") and self.open and self.open[-1] == "cell":
            self.open.pop()  # a new cell or row closes the open cell
        if tag == "table":
            self.open.append("table")
        elif tag in ("td", "th"):
            self.open.append("cell")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.open and self.open[-1] == "cell":
            self.open.pop()
        elif tag == "table" and "table" in self.open:
            while self.open.pop() != "table":
                pass

    def handle_data(self, data):
        if self.open and self.open[-1] == "table" and data.strip():
            self.between_cells.append(data)


# inscriptis keeps the line break that often follows <a ...>: "[ Sign](…)" becomes "[Sign](…)".
_SPACE_IN_LINK = re.compile(r"\[\s+(?=[^\[\]]*\]\()")
_BLANK_LINES = re.compile(r"\n{3,}")


def _html_to_text(html: str) -> str:
    """Return the plain text of sanitised HTML: paragraphs, lists, links as [text](url)."""
    from inscriptis import get_text

    text = get_text(html, _text_config())
    text = "\n".join(line.rstrip() for line in text.splitlines())
    text = _SPACE_IN_LINK.sub("[", text)
    return _BLANK_LINES.sub("\n\n", text).strip()
