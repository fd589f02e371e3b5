"""Compose: the sender allow-list, the layout, inlined CSS, the plain text made from the HTML,
merge-field errors with their line, and the template-injection corpus through the admin form."""

import re

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.test import override_settings
from django.utils.html import escape

from mailings.content.rendering import (
    CompiledMailing,
    build_message,
    compiled_mailing,
    merge_fields,
)
from mailings.models import Mailing
from mailings.sending import delivery_snapshot, mailing_send, mailing_send_batch
from tests.factories import MAILING_FORM_NO_VERSIONS, MailingFactory, SupporterFactory

pytestmark = pytest.mark.django_db

DEFAULT_SENDER = "Rally campaigns <campaigns@rally.example>"
TWO_SENDERS = override_settings(
    RALLY_SENDERS=[
        {
            "name": "Amnesty Canada",
            "email": "act@amnesty.example",
            "reply_to": "hi@amnesty.example",
        },
        {"name": "Hilary at Amnesty", "email": "hilary@amnesty.example"},
    ],
    RALLY_SENDER_DOMAINS=["amnesty.example"],
)
ORGANISATION = override_settings(
    RALLY_ORGANISATION_NAME="Amnesty {{ Canada }}",
    RALLY_ORGANISATION_ADDRESS="312 Laurier Ave E, Ottawa ON K1N 1H9",
)


def render(mailing, **overrides):
    compiled = CompiledMailing(mailing)
    values = {
        "supporter_id": 7, "email": "ann@example.org", "first_name": "Ann", "last_name": "Lee",
        "country": "GB", "language": "en", **overrides,
    }  # fmt: skip
    return compiled.render(merge_fields(compiled=compiled, **values))


def body_of(html: str) -> str:
    """The campaigner's part of a rendered message: between the layout's body cell and footer."""
    start = html.index('<td style="padding:24px;')
    return html[start : html.index("border-top:1px solid", start)]


def form_data(mailing, **changes):
    data = {
        "campaign": mailing.campaign_id, "petition": mailing.petition_id or "",
        "name": mailing.name, "subject": mailing.subject, "preheader": mailing.preheader,
        "sender": f"{mailing.from_name} <{mailing.from_email}>", "html_body": mailing.html_body,
        "text_body": mailing.text_body, "audience_language": "", "audience_country": "",
        "scheduled_at_0": "", "scheduled_at_1": "",
    }  # fmt: skip
    return {**data, **MAILING_FORM_NO_VERSIONS, **changes}


def row(mailing) -> dict:
    return model_to_dict(Mailing.objects.get(pk=mailing.pk))


# --- The layout --------------------------------------------------------------------------------


@ORGANISATION
def test_the_layout_wraps_the_body_with_the_preheader_and_a_footer_with_address_and_unsubscribe():
    mailing = MailingFactory(preheader="Thousands were detained")
    rendered = render(mailing)
    unsubscribe_url = re.search(r"https?://\S+/unsubscribe/[^\"\s]+", rendered.text)[0]
    html = rendered.html
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in html
    # Hidden preview text first, then one column of presentation tables, 600px at most.
    assert html.index("Thousands were detained") < html.index("Dear Ann,")
    assert "display:none" in html[: html.index("Thousands were detained")]
    assert 'role="presentation"' in html and "max-width:600px" in html
    assert "<!--[if mso]>" in html  # Outlook, which ignores max-width, gets a 600px table
    assert "Dear Ann," in body_of(html)
    footer = html[html.index("border-top:1px solid") :]
    assert "Amnesty {{ Canada }}" in footer  # braces in a setting are text, not a merge field
    assert "312 Laurier Ave E, Ottawa ON K1N 1H9" in footer
    assert f'<a href="{unsubscribe_url}"' in footer and ">Unsubscribe</a>" in footer
    # The text part gets the footer too.
    assert rendered.text.rstrip().endswith("312 Laurier Ave E, Ottawa ON K1N 1H9")
    assert f"Unsubscribe: {unsubscribe_url}" in rendered.text
    assert "\n-- \n" in rendered.text


def test_the_layout_is_compiled_once_per_mailing_not_per_message(monkeypatch):
    from mailings.content import compose

    mailing = MailingFactory()
    calls = []
    real = compose.compose_message
    monkeypatch.setattr(
        "mailings.content.rendering.compose_message", lambda **kw: calls.append(1) or real(**kw)
    )
    compiled = compiled_mailing(mailing)
    for supporter_id in range(5):
        fields = merge_fields(compiled=compiled, supporter_id=supporter_id, email="a@b.org",
                              first_name="A", last_name="B", country="GB")  # fmt: skip
        build_message(compiled=compiled, fields=fields, delivery_id=supporter_id)
    assert compiled_mailing(mailing) is compiled
    assert len(calls) == 1


def test_style_in_the_body_is_inlined_into_the_elements_then_sanitised(admin_client):
    mailing = MailingFactory()
    body = (
        "<style>p.lead { color: #8a1c1c; font-size: 20px } a { color: #0000ee }\n"
        "  .photo { background: url(https://x.example/a.png) }\n"
        "  @media (max-width: 480px) { p.lead { font-size: 18px } }</style>"
        '<p class="lead" onclick="x()">Dear {{ first_name }},</p>'
        '<p class="photo"><a href="{{ petition_url }}">Sign</a></p><script>x()</script>'
    )
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/", form_data(mailing, html_body=body)
    )
    assert response.status_code == 302
    mailing.refresh_from_db()
    assert mailing.html_body.startswith("<style>")  # the campaigner keeps their stylesheet
    html = body_of(render(mailing).html)
    assert "<style" not in html
    assert '<p class="lead" style="color: #8a1c1c;font-size: 20px;">Dear Ann,</p>' in html
    assert 'style="color: #0000ee;"' in html
    assert '<p class="photo" style="background: url(https://x.example/a.png);">' in html
    assert "onclick" not in html and "<script" not in html


# --- The plain-text part -----------------------------------------------------------------------


@ORGANISATION
def test_text_made_from_the_html_keeps_links_as_urls_and_gets_the_footer():
    mailing = MailingFactory(
        text_body="",
        html_body=(
            '<p>Dear {{ first_name|default:"friend" }},</p>\n'
            "<p>Crowds were <strong>detained</strong> &amp; charged.</p>\n"
            '<p><a href="{{ petition_url }}">\nSign the petition</a></p>\n'
            "<ul><li>Share it</li><li>Call your MP</li></ul>"
        ),
    )
    rendered = render(mailing)
    petition_url = re.search(r'href="([^"]+)"', body_of(rendered.html))[1].replace("&amp;", "&")
    assert "/petitions/" in petition_url
    assert rendered.text.startswith(
        "Dear Ann,\n\nCrowds were detained & charged.\n\n"
        f"[Sign the petition]({petition_url})\n\n  * Share it\n  * Call your MP\n\n-- \n"
    )
    assert "Unsubscribe: http" in rendered.text
    assert "Amnesty {{ Canada }}\n312 Laurier Ave E" in rendered.text
    assert render(mailing, first_name="").text.startswith("Dear friend,")


def test_merge_tags_survive_the_conversion_and_leave_no_blank_lines():
    mailing = MailingFactory(
        text_body="",
        html_body=(
            "<p>Hello.</p>\n"
            "{% if first_name %}<p>We know you, {{ first_name|upper }}.</p>{% endif %}\n"
            "<p>Braces as text: &#123;&#123; email }} and {% templatetag openbrace %}.</p>"
        ),
    )
    assert render(mailing).text.startswith(
        "Hello.\n\nWe know you, ANN.\n\nBraces as text: {{ email }} and {.\n"
    )
    assert render(mailing, first_name="").text.startswith(
        "Hello.\n\nBraces as text: {{ email }} and {.\n"
    )
    # In the HTML an entity keeps the brace from being read as a tag: a browser shows "{{".
    assert "&#123;{ email }} and {." in body_of(render(mailing).html)


def test_a_written_text_body_is_kept_and_gets_the_footer():
    rendered = render(MailingFactory())
    assert rendered.text.startswith("Dear Ann,\n\nSign: http")
    assert "\n\nUnsubscribe: http" in rendered.text
    assert rendered.text.rstrip().endswith("United Kingdom")  # the default address's end


def test_a_block_tag_the_text_cannot_keep_is_refused_unless_a_text_is_written(admin_client):
    mailing = MailingFactory()
    before = row(mailing)
    body = '<p title="{% if first_name %}x{% endif %}">Hi</p>'
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        form_data(mailing, html_body=body, text_body=""),
    )
    assert escape("Line 1: {% if first_name %} sits where the plain text version") in (
        response.content.decode()
    )
    assert row(mailing) == before
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        form_data(mailing, html_body=body, text_body="Hi"),
    )
    assert response.status_code == 302


def test_a_tag_between_table_rows_is_refused_rather_than_moved(admin_client):
    mailing = MailingFactory()
    before = row(mailing)
    body = "<table><tr><td>a</td></tr>\n{% if first_name %}<tr><td>b</td></tr>{% endif %}</table>"
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/", form_data(mailing, html_body=body)
    )
    assert escape("Line 2: {% if first_name %} sits in a table but outside its cells") in (
        response.content.decode()
    )
    assert row(mailing) == before


# --- Merge fields ------------------------------------------------------------------------------


def test_subject_and_preheader_may_use_merge_fields_escaped_in_the_html():
    mailing = MailingFactory(
        subject="{{ first_name }}, sign for {{ country }}",
        preheader='{{ first_name|default:"Friend" }}, read <this> first',
    )
    rendered = render(mailing, first_name="<b>Ann</b>")
    assert rendered.subject == "<b>Ann</b>, sign for United Kingdom"
    assert "&lt;b&gt;Ann&lt;/b&gt;, read &lt;this&gt; first</div>" in rendered.html
    assert "Friend, read &lt;this&gt; first</div>" in render(mailing, first_name="").html


def test_language_is_a_merge_field_filled_by_the_send_queue(django_capture_on_commit_callbacks):
    SupporterFactory(email="ru@example.org", language="ru")
    mailing = MailingFactory(subject="[{{ language }}] Sign now", text_body="Lang: {{ language }}")
    with django_capture_on_commit_callbacks(execute=False):
        mailing_send(mailing=mailing)
    delivery_snapshot(mailing_id=mailing.pk)
    mailing_send_batch(mailing_id=mailing.pk, worker="test")
    (message,) = mail.outbox
    assert message.subject == "[ru] Sign now"
    assert message.body.startswith("Lang: ru\n")


def test_a_mistake_is_reported_with_its_line_and_nothing_is_saved(admin_client):
    mailing = MailingFactory()
    before = row(mailing)
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        form_data(
            mailing,
            html_body="<p>Dear {{ first_name }},</p>\n<p>Hello</p>\n<p>{{ frist_name }}</p>",
            text_body="One\n{% if first_name %}\nTwo",
            subject="{% load static %}Hi",
        ),
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Line 3: unknown merge field frist_name; did you mean first_name?" in page
    assert escape("Line 2: Unclosed tag: 'if'.") in page
    assert escape("Line 1: {% load %} is not allowed in a mailing") in page
    assert row(mailing) == before


def test_the_help_documents_fallbacks_and_every_merge_field(admin_client):
    page = admin_client.get(f"/admin/mailings/mailing/{MailingFactory().pk}/change/")
    page = page.content.decode()
    assert escape('{{ first_name|default:"friend" }}') in page
    assert "{{ language }}" in page and "{{ unsubscribe_url }}" in page
    assert escape("A <style> is inlined into the elements it styles") in page


# --- The template-injection corpus -------------------------------------------------------------

REFUSED = [
    ("html_body", "{{ supporter.delete }}", "Line 1: unknown merge field supporter.delete"),
    ("html_body", "<p>x</p>\n{% debug %}", "Line 2: {% debug %} is not allowed in a mailing"),
    ("html_body", "{% load static %}", "Line 1: {% load %} is not allowed in a mailing"),
    ("html_body", '{% include "base.html" %}', "Line 1: {% include %} is not allowed"),
    ("html_body", '{% extends "base.html" %}', "Line 1: {% extends %} is not allowed"),
    ("text_body", "{{ first_name.__class__ }}", "Line 1: Variables and attributes may not"),
    ("html_body", "{{ first_name.__class__.__mro__ }}", "may not begin with underscores"),
    ("subject", "{{ email.__class__.__base__ }}", "may not begin with underscores"),
    ("html_body", "{{ first_name|safe }}", "Line 1: the safe filter is not allowed"),
    ("preheader", "{{ first_name|safeseq }}", "the safeseq filter is not allowed"),
    ("html_body", "{{ first_name|json_script:'x' }}", "the json_script filter is not allowed"),
    ("html_body", "{% filter safe %}{{ first_name }}{% endfilter %}", "Line 1:"),
    ("html_body", "{{ first_name.upper }}", "a merge field is plain text with no parts"),
    ("text_body", "{% if email.delete %}x{% endif %}", "a merge field is plain text"),
    ("subject", "{% with x=first_name.title %}{{ x }}{% endwith %}", "no parts to look up"),
    ("html_body", "{% autoescape off %}{{ first_name }}{% endautoescape %}", "autoescape off"),
    ("html_body", '{{ first_name|default:"<script>x()</script>" }}', "unescaped"),
    ("preheader", "{% firstof first_name '\"><script>' %}", "unescaped"),
    ("html_body", '<a href="{{ petition_url|default:\'" onclick="x\' }}">', "unescaped"),
    ("html_body", "{% now '<' %}", "{% now %} may not write"),
    ("html_body", "{% verbatim %}{{ x }}{% endverbatim %}", "{% verbatim %} is not allowed"),
    ("html_body", "{% for x in email %}{{ x }}{% endfor %}", "{% for %} is not allowed"),
    ("html_body", "{{ settings.SECRET_KEY }}", "unknown merge field settings.SECRET_KEY"),
    ("html_body", "{% url 'admin:index' %}", "{% url %} is not allowed"),
    ("html_body", "<style>p { background: url('javascript:x()') }</style>", "A <style> holds"),
    ("html_body", "<style>@import url(https://x.example/a.css);</style>", "A <style> holds"),
    ("html_body", "<style>p { width: expr\\65 ssion(x()) }</style>", "A <style> holds"),
]


@pytest.mark.parametrize(("field", "source", "message"), REFUSED)
def test_an_injection_is_refused_at_save_with_a_clear_message_and_no_write(
    admin_client, field, source, message
):
    mailing = MailingFactory()
    before = row(mailing)
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/", form_data(mailing, **{field: source})
    )
    assert response.status_code == 200
    assert escape(message) in response.content.decode()
    assert row(mailing) == before


INERT = [
    "<p>Hi</p><script>alert(document.cookie)</script>",
    '<p onclick="steal()" onmouseover="steal()">Hi</p>',
    '<img src="https://x.example/a.png" onerror="steal()">',
    '<a href="javascript:steal()">Sign</a>',
    '<a href="JaVaScRiPt&colon;steal()">Sign</a>',
    '<p style="background:url(javascript:steal())">Hi</p>',
    '<p style="width: expression(steal())">Hi</p>',
    '<link rel="stylesheet" href="https://x.example/a.css"><p>Hi</p>',
    "<iframe src=https://x.example></iframe><p>Hi</p>",
    "&lt;script&gt;steal()&lt;/script&gt;",
]


@pytest.mark.parametrize("body", INERT)
def test_script_handlers_and_javascript_urls_are_rendered_inert(admin_client, body):
    mailing = MailingFactory()
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/", form_data(mailing, html_body=body)
    )
    assert response.status_code == 302
    mailing.refresh_from_db()
    html = body_of(render(mailing).html).lower()
    for unsafe in ("<script", "onclick", "onmouseover", "onerror", "javascript", "expression(",
                   "<link", "<iframe", "<style"):  # fmt: skip
        assert unsafe not in mailing.html_body.lower()
        assert unsafe not in html


# A merge field that decides where a link points could make it a javascript: URL.
LINKS_MADE_BY_A_MERGE_FIELD = [
    '<p><a href="{{ first_name }}">Sign</a></p>',
    '<p><a href=" {{ last_name }}">Sign</a></p>',
    '<p><a href="java{{ first_name }}">Sign</a></p>',
    '<p><a href="java&#9;{{ first_name }}">Sign</a></p>',
    '<p><a href="{{ first_name }}{{ petition_url }}">Sign</a></p>',
    '<p><a href="{{ petition_url|default:first_name }}">Sign</a></p>',
    '<p><a href="{% firstof first_name %}">Sign</a></p>',
    '<p><a href="{% if first_name %}{{ first_name }}{% endif %}">Sign</a></p>',
    '<p><img src="{{ first_name }}" alt=""></p>',
]


@pytest.mark.parametrize("body", LINKS_MADE_BY_A_MERGE_FIELD)
def test_a_merge_field_that_makes_a_links_address_is_refused_at_save(admin_client, body):
    mailing = MailingFactory()
    before = row(mailing)
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/", form_data(mailing, html_body=body)
    )
    assert response.status_code == 200
    assert "a javascript: one included" in response.content.decode()
    assert row(mailing) == before


@pytest.mark.parametrize("body", LINKS_MADE_BY_A_MERGE_FIELD[:4])
def test_a_stored_mailing_whose_link_a_merge_field_makes_never_renders_a_javascript_url(body):
    # Saved before the check existed: the send queue compiles it again, and refuses it.
    mailing = MailingFactory(html_body=body)
    with pytest.raises(ValidationError, match="a javascript: one included"):
        render(mailing, first_name="javascript:alert(document.cookie)", last_name="javascript:x")


def test_links_that_merely_carry_merge_fields_render_with_their_own_scheme(admin_client):
    mailing = MailingFactory()
    body = (
        '<p><a href="{{ petition_url }}">Sign</a> <a href="{{ unsubscribe_url }}">Leave</a> '
        '<a href="https://example.org/?name={{ first_name }}">Hi</a> '
        '<a href="mailto:desk@example.org?subject={{ first_name }}">Write</a> '
        '<a href="/{{ first_name }}">Here</a></p>'
    )
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/", form_data(mailing, html_body=body)
    )
    assert response.status_code == 302
    mailing.refresh_from_db()
    html = body_of(render(mailing, first_name="javascript:alert(1)").html)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert len(hrefs) == 5
    assert all(href.startswith(("http://", "https://", "mailto:", "/")) for href in hrefs)
    assert not any(href.lower().startswith("javascript") for href in hrefs)


# --- The sender --------------------------------------------------------------------------------


@TWO_SENDERS
def test_the_form_offers_the_allowed_senders_and_fills_the_mailing_from_the_choice(admin_client):
    mailing = MailingFactory(from_name="Amnesty Canada", from_email="act@amnesty.example")
    page = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()
    assert escape("Amnesty Canada <act@amnesty.example>, replies to hi@amnesty.example") in page
    assert escape("Hilary at Amnesty <hilary@amnesty.example>") in page
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        form_data(mailing, sender="Hilary at Amnesty <hilary@amnesty.example>"),
    )
    assert response.status_code == 302
    mailing.refresh_from_db()
    assert (mailing.from_name, mailing.from_email, mailing.reply_to) == (
        "Hilary at Amnesty", "hilary@amnesty.example", ""
    )  # fmt: skip
    assert render(mailing).html  # still compiles


@TWO_SENDERS
def test_a_sender_on_a_foreign_domain_cannot_be_saved(admin_client):
    mailing = MailingFactory(from_name="Spoof", from_email="news@bank.example")
    before = row(mailing)
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        form_data(mailing, subject="Changed"),
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "news@bank.example is not on a sending domain of this organisation" in page
    assert row(mailing) == before
    # Nor can a sender that is not offered be posted.
    response = admin_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        form_data(mailing, sender="Me <me@amnesty.example.evil>"),
    )
    assert "Select a valid choice" in response.content.decode()
    assert row(mailing) == before


def test_a_new_mailing_defaults_to_the_first_sender_and_the_text_may_be_left_empty(admin_client):
    template = MailingFactory()
    page = admin_client.get("/admin/mailings/mailing/add/").content.decode()
    assert f'<option value="{escape(DEFAULT_SENDER)}" selected>' in page
    data = form_data(template, name="Fresh appeal", text_body="")
    response = admin_client.post("/admin/mailings/mailing/add/", data)
    assert response.status_code == 302
    created = Mailing.objects.get(name="Fresh appeal")
    assert (created.from_name, created.from_email, created.text_body) == (
        "Rally campaigns", "campaigns@rally.example", ""
    )  # fmt: skip
    assert "[Sign](http" in render(created).text


def test_the_sender_settings_are_checked_at_start_up():
    assert not [e for e in run_checks() if e.id.startswith("rally.")]
    with override_settings(
        RALLY_SENDERS=[{"name": "A", "email": "a@one.example"}, {"email": "b@two.example"}],
        RALLY_SENDER_DOMAINS=["two.example"],
    ):
        ids = sorted(e.id for e in run_checks() if e.id.startswith("rally."))
    assert ids == ["rally.E002", "rally.E003"]


def test_the_layout_speaks_the_language_it_is_composed_in():
    from mailings.content.compose import compose_message

    message = compose_message(preheader="", html_body="<p>Привет</p>", text_body="", language="ru")
    assert '<html lang="ru">' in message.html
    assert "Вы получили это письмо, потому что поддерживаете наши кампании." in message.html
    assert ">Отписаться</a>" in message.html
    assert "Отписаться: {{ unsubscribe_url }}" in message.text


def test_fallbacks_and_harmless_tags_compile():
    mailing = MailingFactory(
        text_body="",
        html_body=(
            '<p>{% firstof first_name "friend" %}, {{ first_name|default:"friend"|title }}</p>'
            "{% with name=full_name %}<p>{{ name }} ({{ language|upper }})</p>{% endwith %}"
            "<p>{% now 'Y' as year %}{{ year }} {% templatetag openvariable %}</p>"
        ),
    )
    rendered = render(mailing, first_name="", last_name="Lee", language="ru")
    assert "<p>friend, Friend</p><p>Lee (RU)</p>" in body_of(rendered.html)
    assert rendered.text.startswith("friend, Friend\n\nLee (RU)\n\n20")


@TWO_SENDERS
def test_a_sent_mailings_sender_is_shown_but_cannot_be_changed(admin_client):
    mailing = MailingFactory(
        from_name="Amnesty Canada", from_email="act@amnesty.example", status=Mailing.Status.SENT
    )
    url = f"/admin/mailings/mailing/{mailing.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert re.search(r'<select name="sender"[^>]* disabled', page)
    response = admin_client.post(
        url, {"sender": "Hilary at Amnesty <hilary@amnesty.example>", **MAILING_FORM_NO_VERSIONS}
    )
    assert response.status_code == 302
    mailing.refresh_from_db()
    assert mailing.from_email == "act@amnesty.example"
