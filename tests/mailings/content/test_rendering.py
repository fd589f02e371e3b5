import pytest
from django.core.exceptions import ValidationError

from campaigns.links import read_petition_token
from mailings.content.rendering import (
    CompiledMailing,
    build_message,
    compile_merge_template,
    merge_fields,
)
from supporters.tokens import read_unsubscribe_token
from tests.factories import MailingFactory

pytestmark = pytest.mark.django_db


def fields_for(compiled, **overrides):
    values = {
        "supporter_id": 7,
        "email": "ann@example.org",
        "first_name": "Ann",
        "last_name": "Lee",
        "country": "GB",
        **overrides,
    }
    return merge_fields(compiled=compiled, **values)


def test_merge_fields_are_a_flat_dict_of_strings():
    compiled = CompiledMailing(MailingFactory())
    fields = fields_for(compiled)
    assert all(isinstance(value, str) for value in fields.values())
    assert fields["full_name"] == "Ann Lee"
    assert fields["country"] == "United Kingdom"


def test_message_is_personal_and_carries_one_click_unsubscribe_headers():
    mailing = MailingFactory(preheader="Read <this> first")
    compiled = CompiledMailing(mailing)
    fields = fields_for(compiled)
    message = build_message(compiled=compiled, fields=fields, delivery_id=99)
    assert message.subject == "Ann, sign now"
    assert message.to == ["ann@example.org"]
    assert "Dear Ann," in message.body
    html = message.alternatives[0][0]
    assert "Dear Ann," in html
    assert "Read &lt;this&gt; first" in html
    assert message.metadata == {"delivery_id": "99", "mailing_id": str(mailing.pk)}

    headers = message.extra_headers
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_part, mailto_part = headers["List-Unsubscribe"].split(", ")
    token = fields["unsubscribe_url"].rstrip("/").rsplit("/", 1)[-1]
    assert https_part == f"<{fields['unsubscribe_url']}>"
    assert read_unsubscribe_token(token) == 7
    assert mailto_part.startswith("<mailto:") and "subject=unsubscribe" in mailto_part


def test_petition_link_names_the_supporter_and_mailing_not_the_email():
    mailing = MailingFactory()
    fields = fields_for(CompiledMailing(mailing))
    url = fields["petition_url"]
    assert f"/petitions/{mailing.petition.slug}/?t=" in url
    assert "ann" not in url.lower()
    link = read_petition_token(url.split("?t=")[1])
    assert (link.supporter_id, link.mailing_id) == (7, mailing.pk)
    assert read_petition_token(url.split("?t=")[1].replace("7-", "8-")) is None


def test_html_body_escapes_merge_values_and_text_body_does_not():
    compiled = CompiledMailing(MailingFactory())
    fields = fields_for(compiled, first_name="<b>Ann</b> & co")
    rendered = compiled.render(fields)
    assert "Dear &lt;b&gt;Ann&lt;/b&gt; &amp; co," in rendered.html
    assert "Dear <b>Ann</b> & co," in rendered.text


def test_empty_first_name_falls_back_to_the_default_filter():
    compiled = CompiledMailing(MailingFactory())
    assert compiled.render(fields_for(compiled, first_name="")).subject == "Friend, sign now"


@pytest.mark.parametrize(
    "source",
    [
        "{% load static %}",
        '{% include "base.html" %}',
        '{% extends "base.html" %}',
        "{% debug %}",
        "{% for x in email %}{{ x }}{% endfor %}",
        "{{ settings.SECRET_KEY }}",
        "{{ supporter.email }}",
        "{% if %}",
        "{{ first_name|no_such_filter }}",
        # The template-injection corpus; tests/mailings/content/test_compose.py sends each
        # through the admin form and checks that nothing is saved.
        "{{ supporter.delete }}",
        "{% debug %}",
        "{% verbatim %}{{ x }}{% endverbatim %}",
        "{{ first_name.__class__ }}",
        "{{ first_name.__class__.__mro__ }}",
        "{{ first_name|safe }}",
        "{{ first_name|safeseq }}",
        "{% filter safe %}{{ first_name }}{% endfilter %}",
        "{% autoescape off %}{{ first_name }}{% endautoescape %}",
        "{{ first_name.upper }}",
        "{% if email.delete %}x{% endif %}",
        "{% with name=first_name.strip %}{{ name }}{% endwith %}",
        '{{ first_name|default:"<script>alert(1)</script>" }}',
        "{% firstof first_name '\"><script>' %}",
        "{% now '<' %}",
        "{% url 'admin:index' %}",
    ],
)
def test_templates_may_use_only_merge_fields_and_harmless_tags(source):
    with pytest.raises(ValidationError):
        compile_merge_template(source, html=True)


def test_allowed_template_features_compile():
    template = compile_merge_template(
        "{% if first_name %}Dear {{ first_name|title }}{% else %}Hello{% endif %}, "
        "{{ petition_url }} {% now 'Y' %}",
        html=True,
    )
    assert template is not None
