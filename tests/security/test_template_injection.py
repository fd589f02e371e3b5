"""A campaigner's template reaches nothing but the supporter's merge fields, as plain text.

The corpus of forbidden constructs (attribute walks, {% load %}, {% include %}, {% debug %},
|safe, …) is refused one by one in tests/mailings/content/test_rendering.py and through the
admin form in tests/mailings/content/test_compose.py. Here: every filter Django has, tried on
a hostile name; what the renderer is handed, in a real send path; and random templates built
from the pieces an attacker would use (hypothesis).
"""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context
from hypothesis import given
from hypothesis import strategies as st

from mailings.content import rendering
from mailings.content.rendering import (
    MERGE_FIELDS,
    CompiledMailing,
    build_message,
    compile_mailing,
    compile_merge_template,
    merge_fields,
)
from tests.factories import MailingFactory

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FILTERS = sorted(rendering._html_engine.template_builtins[0].filters)


@pytest.mark.parametrize("name", FILTERS)
def test_every_filter_on_a_hostile_name_is_refused_or_renders_it_escaped(name):
    """A filter the checks let through renders any text without raising, and escaped."""
    for source in (f"{{{{ first_name|{name} }}}}", f'{{{{ first_name|{name}:"1" }}}}'):
        try:
            template = compile_merge_template(source, html=True)
        except ValidationError:
            continue
        for value in (HOSTILE, "", "12", "Zoë"):
            html = template.render(Context({field: value for field in MERGE_FIELDS}))
            assert "<script" not in html and "<img" not in html, (source, html)


@pytest.mark.parametrize(
    "source",
    ['{{ first_name|divisibleby:"2" }}', "{{ first_name|timesince }}", '{{ email|urlize:"1" }}'],
)
def test_a_template_that_fails_on_some_text_is_refused_when_saved_not_when_sent(source):
    with pytest.raises(ValidationError) as refused:
        compile_mailing(
            subject="Hello", preheader="", html_body=f"<p>Dear friend,</p>\n<p>{source}</p>",
            text_body="Dear friend",
        )  # fmt: skip
    [message] = refused.value.message_dict["html_body"]
    assert message.startswith(f"Line 2: {source} cannot be written out for every supporter")


@pytest.mark.django_db
def test_the_renderer_is_handed_a_flat_dict_of_strings_and_nothing_else(monkeypatch):
    handed = []
    real_render = rendering.Template.render

    def spy(self, context):
        # The campaigner's templates only: the layout is Rally's own, compiled by compose.py.
        if self.engine in (rendering._html_engine, rendering._text_engine):
            handed.append(context.flatten())
        return real_render(self, context)

    monkeypatch.setattr(rendering.Template, "render", spy)
    mailing = MailingFactory(
        html_body='<p>{{ first_name }}</p><p><a href="https://rally.example/x">x</a></p>'
    )
    compiled = CompiledMailing(mailing)
    fields = merge_fields(
        compiled=compiled, supporter_id=1, email="a@example.org", first_name="Ann",
        last_name="Lee", country="GB", language="en",
    )  # fmt: skip
    build_message(compiled=compiled, fields=fields, delivery_id=1, tracked_supporter_id=1)
    assert handed
    for context in handed:
        names = set(context) - {"True", "False", "None"}  # Django's own literals
        assert all(isinstance(context[name], str) for name in names), context
        extra = {
            name for name in names if name not in MERGE_FIELDS and not name.startswith("tracked_")
        }
        assert not extra, extra


# Pieces of templates an attacker would try, for hypothesis to put together.
PIECES = [
    "{{ ", " }}", "{% ", " %}", "{# ", " #}", "|", ":", ".", "'", '"', "<", ">", " ",
    "first_name", "email", "petition_url", "settings", "request", "supporter", "__class__",
    "__mro__", "__subclasses__", "__globals__", "SECRET_KEY", "delete", "save", "pk",
    "safe", "safeseq", "escape", "force_escape", "default", "add", "slice", "pprint",
    "stringformat", "urlize", "linebreaks", "if", "endif", "with", "endwith", "filter",
    "endfilter", "firstof",
    "now", "autoescape", "endautoescape", "off", "load", "include", "extends", "debug", "url",
    "csrf_token", "for", "endfor", "templatetag", "openbrace", "verbatim", "lorem", "cycle",
    "widthratio", "spaceless", "endspaceless", "comment", "endcomment", "as", "x", "0", "-1",
    "1e9", "%s", "%(x)s", "<script>", "</script>", "javascript:", "\n",
]  # fmt: skip
template_sources = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=24
).map("".join)
field_values = st.text(max_size=30).map(lambda text: f"{text}<x-evil>")


@given(source=template_sources, value=field_values, html=st.booleans())
def test_any_template_is_refused_with_a_message_or_renders_only_escaped_merge_fields(
    source, value, html
):
    try:
        template = compile_merge_template(source, html=html)
    except ValidationError as error:
        assert all(message.strip() for message in error.messages)
        return
    output = template.render(Context({field: value for field in MERGE_FIELDS}, autoescape=html))
    assert settings.SECRET_KEY not in output
    assert "<class" not in output and "object at 0x" not in output
    if html and "<x-evil>" not in source:
        assert "<x-evil>" not in output
