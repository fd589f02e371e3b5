"""Sanitise campaigner HTML, for petition bodies and mailing bodies alike."""

import re

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
# CSS that runs script or loads a binding in some mail client or old browser. A style attribute
# holding any of it is dropped whole; so is one with a CSS escape (a backslash), which could
# spell these words in disguise, and one whose url() is not http(s).
UNSAFE_CSS = ("expression(", "javascript:", "vbscript:", "-moz-binding", "behavior:", "@import")
_CSS_NOISE = re.compile(r"/\*.*?\*/|\s+", re.DOTALL)
_CSS_URL_NOT_HTTP = re.compile(r"url\(['\"]?(?!https?://)")


def css_is_unsafe(css: str) -> bool:
    """Say whether CSS (a style attribute's or a <style>'s) could run or load anything."""
    css = _CSS_NOISE.sub("", css).lower()
    return bool(
        "\\" in css or _CSS_URL_NOT_HTTP.search(css) or any(bad in css for bad in UNSAFE_CSS)
    )


def _drop_unsafe_style(element: str, attribute: str, value: str) -> str | None:
    if attribute == "style" and css_is_unsafe(value):
        return None
    return value


def sanitize_html(html: str, *, keep_style_blocks: bool = False) -> str:
    """Return `html` with scripts, event handlers and unsafe URLs and CSS removed.

    Merge fields such as `{{ petition_url }}` survive: they are plain text, and in an href they
    are a relative URL, which is allowed. `keep_style_blocks` keeps `<style>` elements, which a
    mailing's body may have: mailings/content/compose.py inlines them into style attributes and then
    sanitises the result again, so their CSS meets the same checks as any style attribute.
    """
    # Imported here: every process imports the models, and a send queue worker's main process,
    # which its pool processes copy, never sanitises (docs/performance.md, Memory).
    import nh3  # noqa: PLC0415

    return nh3.clean(
        html,
        tags=ALLOWED_TAGS | {"style"} if keep_style_blocks else ALLOWED_TAGS,
        clean_content_tags={"script"} if keep_style_blocks else {"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_drop_unsafe_style,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
