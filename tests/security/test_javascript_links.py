"""javascript: links: none in a petition's page, a mailing as sent, or a tracked link's redirect.

A campaigner's body is sanitised on the way in (every spelling of a script URL below); a merge
field may not decide where a link points (a supporter's first name could be
"javascript:alert(1)"), which hypothesis tries on links built every way a body could build them.
"""

import html as html_lib
import re

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from config.lib.richtext import sanitize_html
from mailings.content.rendering import CompiledMailing, compile_mailing, merge_fields
from tests.factories import MailingFactory, PetitionFactory

SCRIPT_URLS = [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "java\nscript:alert(1)", "&#106;avascript:alert(1)", "&#x6A;avascript:alert(1)",
    "javascript&colon;alert(1)", "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>",
    "\x01javascript:alert(1)", "jav&#x09;ascript:alert(1)",
]  # fmt: skip
_URL_ATTRIBUTE = re.compile(r'\b(?:href|src)\s*=\s*(?:"([^"]*)"|\'([^\']*)\'|([^\s>]+))', re.I)
SAFE_SCHEMES = ("http:", "https:", "mailto:")


def unsafe_urls(html: str) -> list[str]:
    """Return every href/src whose scheme, as a browser reads it, is not http(s) or mailto."""
    found = []
    for match in _URL_ATTRIBUTE.finditer(html):
        value = html_lib.unescape(next(group for group in match.groups() if group is not None))
        url = "".join(char for char in value if char > " ").lower()
        scheme = re.match(r"[a-z][a-z0-9+.\-]*:", url)
        if scheme and scheme[0] not in SAFE_SCHEMES:
            found.append(value)
    return found


@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_the_sanitiser_leaves_no_script_url_in_a_rich_body(url):
    body = f'<p><a href="{url}">Sign</a> <img src="{url}"> <a href="https://ok.example/">ok</a></p>'
    cleaned = sanitize_html(body)
    assert not unsafe_urls(cleaned), cleaned
    assert 'href="https://ok.example/"' in cleaned


@pytest.mark.django_db
@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_a_petition_page_shows_no_script_url_saved_through_the_admin(client, url):
    petition = PetitionFactory(body=sanitize_html(f'<p><a href="{url}">Read more</a></p>'))
    page = client.get(f"/petitions/{petition.slug}/").content.decode()
    assert not unsafe_urls(page)


@pytest.mark.parametrize(
    "href",
    ["{{ first_name }}", " {{ email }}", "java{{ last_name }}",
     "{{ country }}//evil.example", "{% if first_name %}javascript:x(){% endif %}",
     "{% firstof first_name %}"],
)  # fmt: skip
def test_a_merge_field_may_not_decide_where_a_link_points(href):
    with pytest.raises(ValidationError):
        compile_mailing(
            subject="Hi", preheader="", html_body=f'<p><a href="{href}">Sign</a></p>',
            text_body="Hi",
        )  # fmt: skip


LINK_STARTS = ["", "https://rally.example/p?n=", "mailto:", "java", "https:", "/", "#", " ", "x"]
LINK_FIELDS = [
    "{{ first_name }}", "{{ petition_url }}", "{{ unsubscribe_url }}", "{{ email }}",
    '{{ first_name|default:"javascript:x()" }}', "{{ full_name }}:alert(1)", "",
]  # fmt: skip
names = st.one_of(
    st.sampled_from(SCRIPT_URLS), st.text(max_size=20), st.just("https://evil.example/")
)


@pytest.mark.django_db
@given(
    starts=st.lists(st.sampled_from(LINK_STARTS), min_size=1, max_size=3),
    fields=st.lists(st.sampled_from(LINK_FIELDS), min_size=1, max_size=3),
    first_name=names,
)
def test_no_supporter_details_make_a_sent_link_a_script_url(starts, fields, first_name):
    links = "".join(
        f'<a href="{start}{field}">link</a> ' for start, field in zip(starts, fields, strict=False)
    )
    try:
        compile_mailing(subject="Hi", preheader="", html_body=f"<p>{links}</p>", text_body="")
    except ValidationError:
        return
    mailing = MailingFactory(html_body=f"<p>{links}</p>", text_body="")
    compiled = CompiledMailing(mailing)
    fields_of_one = merge_fields(
        compiled=compiled, supporter_id=1, email="ann@example.org", first_name=first_name,
        last_name=first_name, country="GB",
    )  # fmt: skip
    for tracked in (None, 1):
        rendered = compiled.render(fields_of_one, tracked_supporter_id=tracked)
        assert not unsafe_urls(rendered.html), (links, first_name, rendered.html)
