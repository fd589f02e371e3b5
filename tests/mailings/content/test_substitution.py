"""Rendering by substitution gives what Django's template engine gives, or is not used."""

import pytest
from django.template import Context
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.content import HTML_BODY, SUBJECT, TEXT_BODY
from mailings.content.rendering import (
    MERGE_FIELDS,
    CompiledMailing,
    compile_merge_template,
    merge_fields,
)
from mailings.content.substitution import substitution_of
from tests.factories import MailingFactory

# Values that differ in Django's eyes: empty (defaults apply), HTML-special, look-alike tags.
VALUES = st.one_of(
    st.just(""),
    st.sampled_from(["Ann", "<b>Ann</b>", 'O\'Brien & "Sons"', "{{ email }}", "0", " ", "Анна"]),
    st.text(max_size=20),
)
FIELD_SETS = st.fixed_dictionaries({name: VALUES for name in MERGE_FIELDS})

TEMPLATES = [
    "Plain text and nothing else",
    "Dear {{ first_name }}, {{ last_name }}",
    'Dear {{ first_name|default:"friend" }} from {{ country|default:"your country & region" }}',
    "{% if first_name %}Hi {{ first_name }}{% elif last_name %}Dear {{ last_name }}"
    "{% else %}Hello{% endif %}!",
    "{% if email %}{% if first_name %}{{ first_name }} <{{ email }}>{% endif %}{% endif %}",
    '<a href="{{ petition_url }}">{{ full_name|default:"Sign" }}</a>{# a comment #}',
    "",
]


@pytest.mark.parametrize("source", TEMPLATES)
@pytest.mark.parametrize("html", [True, False])
@given(fields=FIELD_SETS)
@settings(max_examples=40, deadline=None)
def test_a_template_renders_as_django_renders_it(source, html, fields):
    template = compile_merge_template(source, html=html)
    substitution = substitution_of(template, autoescape=html)
    assert substitution is not None
    assert substitution.render(fields) == template.render(Context(fields, autoescape=html))


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name|upper }}",
        "{{ first_name|default:last_name }}",
        '{{ first_name|default:"a"|lower }}',
        "{% firstof first_name last_name %}",
        "{% if not first_name %}x{% endif %}",
        "{% if first_name == 'Ann' %}x{% endif %}",
        "{% if first_name|length %}x{% endif %}",
        "{% with name=first_name %}{{ name }}{% endwith %}",
        "{% spaceless %}<p> {{ first_name }} </p>{% endspaceless %}",
        "{{ 'literal' }}",
        "{% now 'Y' %}",
    ],
)
def test_a_template_of_any_other_shape_is_left_to_django(source):
    template = compile_merge_template(source, html=True)
    assert substitution_of(template, autoescape=True) is None


@pytest.mark.django_db
@given(fields=FIELD_SETS)
@settings(max_examples=25, deadline=None)
def test_a_whole_mailing_with_tracked_links_renders_as_django_renders_it(fields):
    compiled = CompiledMailing(
        MailingFactory(subject=SUBJECT, html_body=HTML_BODY, text_body=TEXT_BODY)
    )
    templates = compiled.versions[""]
    body_fields = fields | compiled.links.message_fields(fields, version="", supporter_id=7)
    rendered = compiled.render(fields, tracked_supporter_id=7)
    assert rendered.html == templates.html.render(Context(body_fields))
    assert rendered.text == templates.text.render(Context(body_fields, autoescape=False))
    subject = templates.subject.render(Context(fields, autoescape=False))
    assert rendered.subject == " ".join(subject.split())
    # Every template of the bench's mailing, layout and open pixel included, is substituted.
    for template, autoescape in ((templates.html, True), (templates.text, False)):
        assert substitution_of(template, autoescape=autoescape) is not None


@pytest.mark.django_db
def test_a_mailing_using_other_filters_still_renders_through_django():
    compiled = CompiledMailing(
        MailingFactory(subject="{{ first_name|upper }}", html_body="<p>{{ last_name|title }}</p>")
    )
    fields = merge_fields(
        compiled=compiled, supporter_id=7, email="ann@example.org", first_name="ann",
        last_name="o'brien", country="GB",
    )  # fmt: skip
    rendered = compiled.render(fields, tracked_supporter_id=7)
    assert rendered.subject == "ANN"
    assert "O&#x27;Brien" in rendered.html
