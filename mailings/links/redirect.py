"""Where a tracked link leads: only ever to a link the mailing itself holds.

The token names a mailing, a supporter and an index into the mailing's link list
(mailings/content/tracked_links.py); the URL is that link rendered for that supporter, as the send
rendered it. Nothing in the request other than the signed token is read, so the redirect can
never be pointed anywhere else.
"""

from dataclasses import dataclass
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.urls import Resolver404, resolve

from campaigns.links import PETITION_TOKEN_PARAMETER, make_petition_token
from campaigns.models import Petition
from mailings.content.rendering import compiled_mailing, supporter_merge_fields
from mailings.content.tracked_links import read_click_token
from mailings.models import Mailing
from supporters.models import Supporter

_SUPPORTER_FIELDS = ("pk", "email", "first_name", "last_name", "country", "language")


@dataclass(frozen=True)
class ClickDestination:
    """A tracked link followed: whose, which, where to send them, and what to record."""

    mailing_id: int
    supporter_id: int
    link_index: int
    url: str
    # The URL without a personal petition token, which would let anyone sign as the supporter.
    recorded_url: str


def click_destination(token: str) -> ClickDestination | None:
    """Return where a click token leads, or None: bad or expired token, no such link, mailing
    or supporter (an erased one included), or a link that does not render as an http(s) URL.
    """
    named = read_click_token(token)
    if named is None:
        return None
    mailing = Mailing.objects.only("pk", "updated_at").filter(pk=named.mailing_id).first()
    if mailing is None:
        return None
    compiled = compiled_mailing(mailing)
    link = compiled.links.link(named.link_index)
    if link is None:
        return None
    supporter = (
        Supporter.objects.only(*_SUPPORTER_FIELDS)
        .exclude(status=Supporter.Status.ERASED)
        .filter(pk=named.supporter_id)
        .first()
    )
    if supporter is None:
        return None
    url = link.render(supporter_merge_fields(compiled, supporter))
    if not is_web_url(url):
        return None
    petition_page = own_petition_page(url)
    recorded_url = url
    if petition_page is not None:
        parts, slug = petition_page
        parameters = [part for part in parts.query.split("&") if part]
        kept = [part for part in parameters if part.split("=", 1)[0] != PETITION_TOKEN_PARAMETER]
        recorded_url = urlunsplit(parts._replace(query="&".join(kept)))
        petition_id = Petition.objects.filter(slug=slug).values_list("pk", flat=True).first()
        if len(kept) == len(parameters) and petition_id is not None:
            # No personal token yet: add this supporter's, so that their signature is
            # credited to the mailing by the one mechanism the petition page has.
            token = make_petition_token(
                supporter_id=supporter.pk, mailing_id=mailing.pk, petition_id=petition_id
            )
            kept.append(urlencode({PETITION_TOKEN_PARAMETER: token}))
            url = urlunsplit(parts._replace(query="&".join(kept)))
    return ClickDestination(
        mailing_id=mailing.pk,
        supporter_id=supporter.pk,
        link_index=link.index,
        url=url,
        recorded_url=recorded_url,
    )


def is_web_url(url: str) -> bool:
    """Say whether `url` is an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" in the host
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def own_petition_page(url: str) -> tuple[SplitResult, str] | None:
    """Return the parts of `url` and the petition's slug if it is a petition page of this site
    (SITE_URL), else None."""
    parts = urlsplit(url)
    site = urlsplit(settings.SITE_URL)
    if (parts.scheme.lower(), parts.netloc.lower()) != (site.scheme.lower(), site.netloc.lower()):
        return None
    path = parts.path
    if site.path:
        if not path.startswith(site.path + "/"):
            return None
        path = path[len(site.path) :]
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if match.view_name != "campaigns:petition_detail":
        return None
    return parts, match.kwargs["slug"]
