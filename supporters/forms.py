"""The preference page's forms: pause mail, or change its language."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Language
from .services import PAUSE_DAYS

# One whole string a choice, so that each translates as a phrase.
PAUSE_LABELS = {30: _("30 days"), 90: _("90 days")}


class PauseForm(forms.Form):
    days = forms.TypedChoiceField(
        label=_("Pause emails for"),
        choices=[(days, PAUSE_LABELS[days]) for days in PAUSE_DAYS],
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose how long to pause for.")},
    )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language of our emails"),
        choices=Language.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose a language.")},
    )
