"""The sign form's own copy of its fields: each form may change its fields, never another's."""

from campaigns.forms import SignatureForm


def test_each_form_gets_fields_of_its_own_and_the_class_keeps_its_own():
    first = SignatureForm(consent_wording="Keep me posted")
    second = SignatureForm(consent_wording="Держите меня в курсе")
    assert first.fields["consent"].label == "Keep me posted"
    assert second.fields["consent"].label == "Держите меня в курсе"
    assert SignatureForm.base_fields["consent"].label != "Keep me posted"

    first.fields["email"].widget.attrs["placeholder"] = "you@example.org"
    first.fields["postcode"].validators.append(lambda value: None)
    first.fields["email"].error_messages["required"] = "changed"
    for other in (second.fields, SignatureForm.base_fields, SignatureForm().fields):
        assert "placeholder" not in other["email"].widget.attrs
        assert len(other["postcode"].validators) == len(
            SignatureForm.base_fields["postcode"].validators
        )
        assert other["email"].error_messages["required"] != "changed"
    assert first.fields["email"].widget is not second.fields["email"].widget
    assert first.fields["email"] is not SignatureForm.base_fields["email"]


def test_a_copied_form_still_validates_and_renders_as_declared():
    data = {"first_name": "Anna", "last_name": "Ivanova", "email": "Anna@Example.org"}
    form = SignatureForm({**data, "country": "gb"}, consent_wording="Keep me posted")
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["email"], form.cleaned_data["country"]) == ("anna@example.org", "GB")
    html = str(form["first_name"])
    assert 'autocomplete="given-name"' in html and "required" in html
    assert 'tabindex="-1"' in str(form["website"])
