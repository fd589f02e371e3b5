import re
import unicodedata
from functools import lru_cache

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from email_validator import EmailNotValidError, validate_email


def reject_control_characters(value: str) -> None:
    """Reject line breaks, tabs and other control characters, which no name contains.

    They break email headers and CSV exports, and are a sign of a bot or a paste gone wrong.
    """
    # U+FFFD is what bytes that were not valid UTF-8 decode to.
    if any(
        unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char == "\ufffd" for char in value
    ):
        raise forms.ValidationError(
            _("Please remove line breaks and special characters."), code="control_characters"
        )


def reject_markup(value: str) -> None:
    """Reject angle brackets, which no name contains and every injection attempt does."""
    if "<" in value or ">" in value:
        raise forms.ValidationError(
            _("Please use letters only; < and > are not allowed."), code="markup"
        )


class NameField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            max_length=100, validators=[reject_control_characters, reject_markup], **kwargs
        )


SOURCE_REF = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def clean_source_ref(value: str) -> str:
    """Return a share ref such as "whatsapp" as given, or "" for anything else (never an error)."""
    value = (value or "").strip().lower()
    return value if SOURCE_REF.fullmatch(value) else ""


@lru_cache(maxsize=8)
def _country_options_html(language: str) -> str:
    """Return the <option> list, sorted by name in the page's language; built once per language.

    Escaping 250 names through format_html for every page was costly (docs/performance.md,
    "The sign form").
    """
    return format_html_join(
        "", '<option value="{}">{}</option>', ((code, str(name)) for code, name in countries)
    )


class CountrySelect(forms.Widget):
    """A country list rendered in Python: Django's per-option templates cost ~250 renders a page.

    A plain Widget, not a Select: a Select's choices would be copied for every form built (what
    that cost: docs/performance.md, "The sign form"), and this widget renders its own options.
    """

    def render(self, name, value, attrs=None, renderer=None):
        final_attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        options = _country_options_html(get_language() or "en")
        selected = str(value or "")
        if selected in _country_codes():
            # A known code is two capital letters, so this marks exactly one option.
            chosen = f'<option value="{selected}">'
            options = mark_safe(  # noqa: S308 -- inserts a fixed attribute into our own markup
                options.replace(chosen, f'<option value="{selected}" selected>', 1)
            )
        # Django's boolean attribute rules: True is a bare flag, False and None are left out.
        attributes = format_html_join(
            "",
            ' {}="{}"',
            ((key, val) for key, val in final_attrs.items() if val not in (True, False, None)),
        )
        flags = "".join(f" {key}" for key, val in final_attrs.items() if val is True)
        return format_html(
            '<select{}{}><option value="">{}</option>{}</select>',
            attributes,
            mark_safe(flags),  # noqa: S308 -- only attribute names set by our own code
            _("Choose your country"),
            options,
        )


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    return frozenset(code for code, _name in countries)


class CountryCodeField(forms.CharField):
    """An ISO 3166 country code from django-countries' list.

    A ChoiceField would deep-copy its 250 choices for every form built, a cost measured in
    docs/performance.md ("The sign form"). The widget renders the list; this field only checks
    the code.
    """

    def to_python(self, value) -> str:
        return super().to_python(value).upper()

    def validate(self, value) -> None:
        super().validate(value)
        if value and value not in _country_codes():
            raise forms.ValidationError(
                _("Please choose your country from the list."), code="invalid_choice"
            )


def _copy_plainly(obj):
    """A shallow copy through the instance dict, without copy.copy's generic protocol."""
    copied = object.__new__(type(obj))
    copied.__dict__.update(obj.__dict__)
    return copied


class FieldsCopiedPlainly(dict):
    """A form's base_fields, copied for each form by a re-implementation of Django internals.

    It re-implements Field.__deepcopy__ and Widget.__deepcopy__;
    tests/campaigns/test_form_copy_matches_django.py fails when Django changes what they copy.
    Django deep-copies base_fields for every form it builds, so that a form may change its own
    fields; through copy.deepcopy's generic protocol that was a sizeable share of building a
    sign form (docs/performance.md, "The sign form"). This copies exactly what those two
    methods copy (the field, its widget, the widget's attrs, the error messages and the
    validators list), through the instance dict, and shares the rest, as they do.
    Only for forms whose fields and widgets hold nothing else mutable (no choices).
    """

    def __deepcopy__(self, memo):
        copies = {}
        for name, field in self.items():
            copied = _copy_plainly(field)
            copied.widget = _copy_plainly(field.widget)
            copied.widget.attrs = field.widget.attrs.copy()
            copied.error_messages = field.error_messages.copy()
            copied.validators = field.validators[:]
            copies[name] = copied
        return copies


class SignatureForm(forms.Form):
    """The sign form. `consent` is optional: a signature counts with or without it."""

    first_name = NameField(label=_("First name"))
    last_name = NameField(label=_("Last name"))
    email = forms.CharField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    country = CountryCodeField(
        label=_("Country"),
        widget=CountrySelect(attrs={"autocomplete": "country"}),
        error_messages={"required": _("Please choose your country.")},
    )
    postcode = forms.CharField(
        label=_("Postcode"),
        max_length=20,
        required=False,
        validators=[reject_control_characters],
    )
    consent = forms.BooleanField(required=False)
    # The share ref of the link that brought the signer ("whatsapp", "telegram", …).
    source = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    # Hidden from people by CSS; bots fill every field they find.
    website = forms.CharField(required=False, label=_("Leave this empty"))

    def __init__(self, *args, consent_wording: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["consent"].label = consent_wording
        self.fields["first_name"].widget.attrs["autocomplete"] = "given-name"
        self.fields["last_name"].widget.attrs["autocomplete"] = "family-name"
        self.fields["website"].widget.attrs.update({"tabindex": "-1", "autocomplete": "off"})

    def clean_email(self) -> str:
        value = self.cleaned_data["email"]
        reject_control_characters(value)
        try:
            # Syntax and normalisation only: no DNS lookups on the request path.
            result = validate_email(value, check_deliverability=False)
        except EmailNotValidError as error:
            raise forms.ValidationError(
                _("Please check your email address: %(reason)s"),
                code="invalid",
                params={"reason": str(error)},
            ) from error
        return result.normalized.lower()

    def clean_source(self) -> str:
        return clean_source_ref(self.cleaned_data["source"])

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))


SignatureForm.base_fields = FieldsCopiedPlainly(SignatureForm.base_fields)


class ResendConfirmationForm(forms.Form):
    email = forms.CharField(
        label=_("Your email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self) -> str:
        return SignatureForm.clean_email(self)
