import unicodedata

from django import forms
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField
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


class SignatureForm(forms.Form):
    """The sign form. `consent` is optional: a signature counts with or without it."""

    first_name = NameField(label=_("First name"))
    last_name = NameField(label=_("Last name"))
    email = forms.CharField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    country = LazyTypedChoiceField(label=_("Country"), choices=countries, required=False)
    postcode = forms.CharField(
        label=_("Postcode"),
        max_length=20,
        required=False,
        validators=[reject_control_characters],
    )
    consent = forms.BooleanField(required=False)
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

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))
