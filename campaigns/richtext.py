"""Sanitise campaigner HTML, for petition bodies and mailing bodies alike."""

import nh3

# What an appeal needs: text structure, links, images and inline styles for email clients.
ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "center", "div", "em", "font", "h1", "h2", "h3", "h4", "hr",
    "i", "img", "li", "ol", "p", "s", "small", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"style", "align", "class", "dir", "lang", "title"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "width", "height"},
    "table": {"width", "cellpadding", "cellspacing", "border", "bgcolor", "role"},
    "td": {"width", "valign", "bgcolor", "colspan", "rowspan"},
    "th": {"width", "valign", "bgcolor", "colspan", "rowspan"},
    "font": {"color", "face", "size"},
}


def sanitize_html(html: str) -> str:
    """Return `html` with scripts, event handlers and unsafe URLs removed.

    Merge fields such as `{{ petition_url }}` survive: they are plain text, and in an href they
    are a relative URL, which is allowed.
    """
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
