"""What the body editor writes is saved, sent and styled as it was written; nothing else is.

The editor itself runs in the browser (tests/browser/test_editor.py); here are the server's
parts: the sanitiser on the editor's markup, the button's look in the email, the demo appeal
fitting the editor whole, and a body the editor would cut opening as HTML instead.
"""

import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from mailings.content.body_editor import editor_misfits
from mailings.content.compose import compose_message, sanitize_mailing_html
from mailings.demo import content
from mailings.models import Mailing
from tests.factories import MAILING_FORM_NO_VERSIONS, MailingFactory

# All the editor writes: a heading, a merge field with its fallback, lists (an ordered one
# with the type attributes the editor adds), a quote, the button, a line break and an image.
EDITOR_HTML = (
    "<h2>Free the marchers</h2>"
    '<p>Dear {{ first_name|default:"friend" }},</p>'
    "<ul><li><p>Sign</p></li><li><p>Share</p></li></ul>"
    '<ol type="1" data-type="decimal"><li><p>First</p></li></ol>'
    "<blockquote><p>We were peaceful.</p></blockquote>"
    '<p><strong>Please</strong> <em>now</em>: <a class="button" href="{{ petition_url }}">'
    'Sign the petition</a><br><img src="https://img.example/march.jpg" alt="Marchers"></p>'
)
BUTTON_LOOK = "background-color: #8a1c1c"


def test_the_sanitiser_keeps_all_the_editor_writes():
    assert sanitize_mailing_html(EDITOR_HTML) == (
        "<h2>Free the marchers</h2>"
        '<p>Dear {{ first_name|default:"friend" }},</p>'
        "<ul><li><p>Sign</p></li><li><p>Share</p></li></ul>"
        # The list's type is the default one; the sanitiser keeps no attribute of a list.
        "<ol><li><p>First</p></li></ol>"
        "<blockquote><p>We were peaceful.</p></blockquote>"
        '<p><strong>Please</strong> <em>now</em>: <a class="button" href="{{ petition_url }}" '
        'rel="noopener noreferrer">Sign the petition</a><br>'
        '<img src="https://img.example/march.jpg" alt="Marchers"></p>'
    )


@pytest.mark.parametrize(
    ("editor_html", "removed"),
    [
        ("<p>Hi</p><script>steal()</script>", ["<script", "steal"]),
        ('<p onclick="steal()">Hi</p>', ["onclick", "steal"]),
        ('<p><a class="button" href="javascript:steal()">Hi</a></p>', ["javascript", "steal"]),
        ('<p><a class="button" href=" JaVaScRiPt:steal()">Hi</a></p>', ["script:", "steal"]),
        ('<p><a class="button" href="#" onmouseover="steal()">Hi</a></p>', ["onmouseover"]),
        ('<p><img src="x" onerror="steal()">Hi</p>', ["onerror", "steal"]),
        ('<p>Hi</p><iframe src="https://evil.example/"></iframe>', ["<iframe", "evil"]),
        ('<p>Hi</p><form action="https://evil.example/"><input name="pw"></form>', ["<form"]),
        ("<p>Hi</p><svg><script>steal()</script></svg>", ["<svg", "steal"]),
        ('<p>Hi</p><object data="https://evil.example/x.swf"></object>', ["<object", "evil"]),
    ],
)
def test_the_sanitiser_cleans_what_an_editor_post_may_carry(editor_html, removed):
    """A POST is the campaigner's browser's, not the editor's: the server trusts none of it."""
    cleaned = sanitize_mailing_html(editor_html)
    assert "Hi" in cleaned
    for fragment in removed:
        assert fragment not in cleaned.lower()


def test_a_button_in_the_email_looks_like_one_and_is_a_link_in_the_plain_text():
    message = compose_message(preheader="", html_body=EDITOR_HTML, text_body="")

    button = re.search(r'<a class="button"[^>]*>', message.html)[0]
    assert 'href="{{ petition_url }}"' in button
    assert BUTTON_LOOK in button
    assert "[Sign the petition]({{ petition_url }})" in message.text
    assert 'Dear {{ first_name|default:"friend" }},' in message.text


def test_a_campaigners_own_style_wins_over_the_button_look():
    html = "<style>a.button{background-color:#005a9c}</style>" + EDITOR_HTML

    button = re.search(r'<a class="button"[^>]*>', compose_message(
        preheader="", html_body=html, text_body=""
    ).html)[0]  # fmt: skip
    assert "background-color: #005a9c" in button
    assert BUTTON_LOOK not in button


def test_the_demo_appeal_fits_the_editor_whole_before_and_after_it_is_sanitised():
    written = content.NAVALNY_MAILING["html_body"]

    assert editor_misfits(written) == []
    assert editor_misfits(sanitize_mailing_html(written)) == []
    assert editor_misfits(EDITOR_HTML) == []
    assert '<a class="button" href="{{ petition_url }}">Sign the petition</a>' in written


@pytest.mark.parametrize(
    ("html", "misfit"),
    [
        ('<p style="color:red">Hi</p>', "style attributes (on <p>)"),
        ('<p><a href="{{ petition_url }}" style="color:red">Hi</a></p>', "style attributes"),
        ("<table><tr><td>Hi</td></tr></table>", "<table>, <tr>, <td> elements"),
        ("<p><span>Hi</span> <u>there</u></p>", "<span>, <u> elements"),
        ("<style>p{color:red}</style><p>Hi</p>", "<style> blocks"),
        ("<!-- for Outlook --><p>Hi</p>", "HTML comments"),
        (
            "<p>Hi</p>\n{% if first_name %}\n<p>{{ first_name }}</p>\n{% endif %}",
            "text or a template tag outside any paragraph (line 2)",
        ),
        ("Hi there", "text or a template tag outside any paragraph (line 1)"),
        ('<a href="{{ petition_url }}">Sign</a>', "outside any paragraph"),
        ('<p dir="rtl">Hi</p>', "dir attributes (on <p>)"),
    ],
)
def test_what_the_editor_would_drop_is_named(html, misfit):
    assert any(misfit in found for found in editor_misfits(html))


@pytest.fixture
def campaigner_client(client):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    client.force_login(User.objects.get(username="campaigner"))
    return client


def body_attributes(page: str, field_id: str) -> str:
    return re.search(rf'<textarea [^>]*id="{field_id}"[^>]*>', page)[0]


@pytest.mark.django_db
def test_the_demo_appeal_opens_in_the_editor_from_the_package_not_a_cdn(campaigner_client):
    mailing = Mailing.objects.get()
    page = campaigner_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()

    body = body_attributes(page, "id_html_body")
    assert 'data-rally-body-mode="editor"' in body
    assert "data-rally-body-note" not in body
    # With the page's CSP nonce (config/settings/base.py), so the import map may run.
    assert re.search(r'<script type="importmap" nonce="[^"]+">', page)
    assert "django_prose_editor/editor.js" in page
    assert "mailings/editor/body_editor.js" in page
    # Every script and stylesheet comes from this site's static files.
    for address in re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', page):
        assert address.startswith("/static/") or not address.startswith(("http", "//"))


@pytest.mark.django_db
def test_a_body_the_editor_would_cut_opens_as_html_and_says_why(campaigner_client):
    kept = '<p>Hi</p><table><tr><td style="color:red">Kept whole</td></tr></table>'
    mailing = MailingFactory(html_body=kept)

    response = campaigner_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/")

    body = body_attributes(response.content.decode(), "id_html_body")
    assert 'data-rally-body-mode="html"' in body
    assert "the editor would drop &lt;table&gt;, &lt;tr&gt;, &lt;td&gt; elements" in body
    # The textarea holds the body as stored, to the letter.
    assert response.context["adminform"].form["html_body"].value() == kept


@pytest.mark.django_db
def test_a_language_version_gets_the_editor_too(campaigner_client):
    mailing = Mailing.objects.get()
    mailing.versions.create(
        language="ru", subject="Привет", html_body='<p style="color:red">Привет</p>'
    )
    page = campaigner_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()

    assert 'data-rally-body-mode="html"' in body_attributes(page, "id_versions-0-html_body")
    assert 'data-rally-body-mode="editor"' in body_attributes(page, "id_html_body")


@pytest.mark.django_db
def test_editor_html_saved_without_a_text_part_gets_one_made_from_it(campaigner_client):
    mailing = Mailing.objects.get()
    response = campaigner_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        {
            "campaign": mailing.campaign_id,
            "petition": mailing.petition_id,
            "name": mailing.name,
            "subject": mailing.subject,
            "preheader": "",
            "sender": f"{mailing.from_name} <{mailing.from_email}>",
            "html_body": EDITOR_HTML,
            "text_body": "",
            **MAILING_FORM_NO_VERSIONS,
        },  # fmt: skip
    )

    assert response.status_code == 302
    mailing.refresh_from_db()
    assert mailing.text_body == ""
    assert 'class="button"' in mailing.html_body
    preview = campaigner_client.get(f"/admin/mailings/mailing/{mailing.pk}/preview/")
    text = preview.context["text"]
    assert "Free the marchers" in text
    assert "[Sign the petition](http" in text
