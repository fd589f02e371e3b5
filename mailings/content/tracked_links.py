"""Tracked links and the open pixel of bulk messages: the mailing's link list and the tokens.

When a mailing is compiled (rendering.CompiledMailing) every http(s) link in it is entered once,
in a stable order, into the mailing's link list: each `<a href>` of the HTML and each URL of the
plain text, of the default content first and then of each language version by language. The
compiled templates are rewritten so that such a link is the variable `tracked_link_<index>`,
and the HTML ends with a pixel, `tracked_open_url`. Per message `message_fields` fills them in:

- a bulk message (a supporter id given): SITE_URL/r/<token>/ for each link, the token signed
  over (mailing, supporter, index); SITE_URL/o/<token>.gif for the pixel;
- a preview or a test copy (no supporter id): each link as written, rendered for the supporter
  it is shown as, and no pixel, so that a campaigner's clicks and opens never count as a
  supporter's, nor credit a signature to the mailing.

A token names an index, never a URL: the redirect (mailings/links/redirect.py) renders the link
that the index names in this list, so it can only ever lead where the mailing itself linked.
Neither the unsubscribe link (`{{ unsubscribe_url }}`) nor mailto: links are tracked.

The list is made from the mailing's content, which cannot change once the mailing leaves draft
(MailingAdmin.get_readonly_fields), so an index means the same link for as long as the mailing
exists.
"""

import dataclasses
import html
import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.template import Context, Template
from django.template.base import tag_re
from django.urls import reverse

from config.lib.signing import timestamp_signer

CLICK_SALT = "rally.mailings.click"
OPEN_SALT = "rally.mailings.open"
OPEN_PIXEL_VARIABLE = "tracked_open_url"
# More links than a reader could follow; past it, links are left as they were written.
MAX_TRACKED_LINKS = 500
_PIXEL = (
    f'{{% if {OPEN_PIXEL_VARIABLE} %}}<img src="{{{{ {OPEN_PIXEL_VARIABLE} }}}}" width="1" '
    'height="1" alt="" style="display:block;width:1px;height:1px;border:0">{% endif %}'
)
_A_HREF = re.compile(r'(<a\s[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_PETITION_URL = re.compile(r"\{\{\s*petition_url\s*(\||\}\})")
_URL_END_PUNCTUATION = ".,;:!?'\""


def link_variable(index: int) -> str:
    """Return the name of the template variable that stands for link `index`."""
    return f"tracked_link_{index}"


@dataclass(frozen=True)
class TrackedLink:
    """A link of a mailing: its template source as text (entities decoded), and compiled."""

    index: int
    source: str
    template: Template

    def render(self, fields: dict) -> str:
        """Return the link for one supporter, from the same merge fields as the message."""
        return self.template.render(Context(fields, autoescape=False)).strip()


class MailingLinks:
    """A mailing's link list, and which links each of its versions holds."""

    def __init__(self, mailing_id: int):
        self.mailing_id = mailing_id
        self.links: list[TrackedLink] = []
        self._index_of: dict[str, int] = {}
        self._indexes_in: dict[str, list[int]] = {}

    def track(self, version: str, templates):
        """Return a version's compiled templates with its links and the pixel swapped in.

        `templates` is a rendering.MailingTemplates; both of its bodies are compiled again from
        their source with their own engine. Only `{{ tracked_link_… }}` variables and the pixel
        are added to what the campaigner's checks passed.
        """
        self._link_engine = templates.text.engine
        used: list[int] = []
        html_source = self._rewrite_html(templates.html.source, used)
        html_source = _add_pixel(html_source)
        text_source = self._rewrite_text(templates.text.source, used)
        # A variant's whole templates (a preheader of its own) are tracked under their version
        # too: its links join the version's, at the indexes they already had.
        self._indexes_in[version] = list(dict.fromkeys(self._indexes_in.get(version, []) + used))
        return dataclasses.replace(
            templates,
            html=templates.html.engine.from_string(html_source),
            text=templates.text.engine.from_string(text_source),
        )

    def link(self, index: int) -> TrackedLink | None:
        """Return the link at `index`, or None when the list has no such link."""
        return self.links[index] if 0 <= index < len(self.links) else None

    def message_fields(
        self, fields: dict[str, str], *, version: str, supporter_id: int | None
    ) -> dict[str, str]:
        """Return the values of a version's link variables and pixel for one message.

        With `supporter_id`, a bulk message's: the signed redirect and pixel. Without, a
        preview's or a test copy's: the links as written, no pixel.
        """
        indexes = self._indexes_in.get(version, self._indexes_in.get("", []))
        if supporter_id is None:
            values = {link_variable(i): self.links[i].render(fields) for i in indexes}
            values[OPEN_PIXEL_VARIABLE] = ""
            return values
        click_before, click_after = _url_parts("mailings:click")
        values = {
            link_variable(i): click_before
            + make_click_token(mailing_id=self.mailing_id, supporter_id=supporter_id, link_index=i)
            + click_after
            for i in indexes
        }
        open_before, open_after = _url_parts("mailings:open")
        values[OPEN_PIXEL_VARIABLE] = (
            open_before
            + make_open_token(mailing_id=self.mailing_id, supporter_id=supporter_id)
            + open_after
        )
        return values

    def _add(self, source: str, engine) -> int | None:
        """Return the index of the link with this text source, entering it if it is new."""
        index = self._index_of.get(source)
        if index is None and len(self.links) < MAX_TRACKED_LINKS:
            index = len(self.links)
            self.links.append(TrackedLink(index, source, engine.from_string(source)))
            self._index_of[source] = index
        return index

    def _rewrite_html(self, source: str, used: list[int]) -> str:
        masked = _Masked(source)

        def replace(match: re.Match) -> str:
            text_source = masked.unmask(html.unescape(match[2])).strip()
            index = self._add(text_source, self._link_engine) if is_tracked(text_source) else None
            if index is None:
                return match[0]
            used.append(index)
            return f"{match[1]}{masked.hide('{{ ' + link_variable(index) + ' }}')}{match[3]}"

        return masked.unmask(_A_HREF.sub(replace, masked.text))

    def _rewrite_text(self, source: str, used: list[int]) -> str:
        masked = _Masked(source)

        def replace(match: re.Match) -> str:
            candidate = _trim_url(masked.cut_at_block_tag(match[0]))
            rest = match[0][len(candidate) :]
            text_source = masked.unmask(candidate)
            index = self._add(text_source, self._link_engine) if is_tracked(text_source) else None
            if index is None:
                return match[0]
            used.append(index)
            return masked.hide("{{ " + link_variable(index) + " }}") + rest

        url = re.compile(r"(?:https?://|" + masked.marker_pattern + r")[^\s<>\"]*", re.IGNORECASE)
        return masked.unmask(url.sub(replace, masked.text))

    # Set by CompiledMailing before the first version is tracked: the plain-text engine, which
    # compiles each link's source to render it without HTML escaping.
    _link_engine = None


def is_tracked(source: str) -> bool:
    """Say whether a link's template source goes through the redirect.

    http(s) links, and `{{ petition_url }}`; never the unsubscribe link, never one with a block
    tag or comment in it (taking it out of the template could unbalance an `{% if %}`).
    """
    if "unsubscribe_url" in source or "{%" in source or "{#" in source:
        return False
    lowered = source.lower()
    return lowered.startswith(("http://", "https://")) or _PETITION_URL.match(source) is not None


def _add_pixel(source: str) -> str:
    ends = list(_BODY_END.finditer(source))
    if not ends:
        return source + _PIXEL
    at = ends[-1].start()
    return source[:at] + _PIXEL + "\n" + source[at:]


def _trim_url(candidate: str) -> str:
    """Drop what ends a sentence or a "[text](url)" from a URL found in plain text."""
    while candidate and (
        candidate[-1] in _URL_END_PUNCTUATION
        or (candidate[-1] == ")" and candidate.count("(") < candidate.count(")"))
        or (candidate[-1] == "]" and candidate.count("[") < candidate.count("]"))
    ):
        candidate = candidate[:-1]
    return candidate


class _Masked:
    """Template source with each tag swapped for a marker, so that a regex sees only text.

    A tag may hold a double quote ({{ first_name|default:"friend" }}) that would end an
    attribute for a regex; a marker holds none. Markers are private-use characters that the
    source does not contain.
    """

    def __init__(self, source: str):
        code = 0xE000
        while chr(code) in source:
            code += 1
        self._mark = chr(code)
        self.marker_pattern = re.escape(self._mark) + r"\d+" + re.escape(self._mark)
        self._marker = re.compile(self.marker_pattern)
        self.tags: list[str] = []
        self.text = tag_re.sub(lambda match: self.hide(match[0]), source)

    def hide(self, tag: str) -> str:
        self.tags.append(tag)
        return f"{self._mark}{len(self.tags) - 1}{self._mark}"

    def unmask(self, text: str) -> str:
        return self._marker.sub(lambda match: self.tags[int(match[0][1:-1])], text)

    def cut_at_block_tag(self, text: str) -> str:
        """Return `text` up to its first marker of a block tag or comment."""
        for match in self._marker.finditer(text):
            if not self.tags[int(match[0][1:-1])].startswith("{{"):
                return text[: match.start()]
        return text


# Tokens. Compact: the three numbers in base 62, then the timestamp and signature of a
# TimestampSigner, so that a token can expire (RALLY_TRACKING_TOKEN_MAX_AGE_DAYS). A message
# signs one token per link: config/lib/signing.py's signers derive their key once, where making
# a Django signer per token costs as much again as signing (docs/performance.md, "Tracked
# links and results").


@dataclass(frozen=True)
class TrackingToken:
    """What a click or open token names. `link_index` is None for an open."""

    mailing_id: int
    supporter_id: int
    link_index: int | None = None


def make_click_token(*, mailing_id: int, supporter_id: int, link_index: int) -> str:
    """Return the token of one supporter's link `link_index` in a mailing."""
    value = ".".join(signing.b62_encode(n) for n in (mailing_id, supporter_id, link_index))
    return timestamp_signer(CLICK_SALT).sign(value)


def make_open_token(*, mailing_id: int, supporter_id: int) -> str:
    """Return the token of one supporter's open pixel in a mailing."""
    value = ".".join(signing.b62_encode(n) for n in (mailing_id, supporter_id))
    return timestamp_signer(OPEN_SALT).sign(value)


def read_click_token(token: str) -> TrackingToken | None:
    """Return what a valid, unexpired click token names; None for any other string."""
    numbers = _read(token, signer=timestamp_signer(CLICK_SALT), count=3)
    return TrackingToken(*numbers) if numbers else None


def read_open_token(token: str) -> TrackingToken | None:
    """Return what a valid, unexpired open token names; None for any other string."""
    numbers = _read(token, signer=timestamp_signer(OPEN_SALT), count=2)
    return TrackingToken(*numbers) if numbers else None


def _read(token: str, *, signer: signing.TimestampSigner, count: int) -> list[int] | None:
    max_age = settings.RALLY_TRACKING_TOKEN_MAX_AGE_DAYS * 24 * 3600
    try:
        value = signer.unsign(token, max_age=max_age)
    except signing.BadSignature:  # tampered, cut short or expired (SignatureExpired)
        return None
    parts = value.split(".")
    if len(parts) != count or not all(part.isalnum() and part.isascii() for part in parts):
        return None
    return [signing.b62_decode(part) for part in parts]


@lru_cache(maxsize=4)
def _url_parts(name: str) -> tuple[str, str]:
    # Resolved once per process: the URL around the token never changes.
    url = settings.SITE_URL + reverse(name, kwargs={"token": "TOKEN"})
    before, _, after = url.partition("TOKEN")
    return before, after
