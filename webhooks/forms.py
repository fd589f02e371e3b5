"""The subscription form of the admin: events as checkboxes, a secret that is never shown."""

from django import forms

from .event_types import EVENT_TYPE_CHOICES
from .models import WebhookSubscription


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=EVENT_TYPE_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    # Write-only: typed when the subscription is made (or replaced later), never rendered, so
    # nobody reading the admin afterwards learns it.
    new_secret = forms.CharField(
        label="Secret",
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Shared with the receiver, which checks each request's Rally-Signature with "
        "it. Not shown again once saved; leave blank to keep the current one.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["url", "events", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["new_secret"].required = True
            self.fields["new_secret"].help_text = (
                "Shared with the receiver, which checks each request's Rally-Signature with "
                "it. Not shown again once saved."
            )
        else:
            self.initial["events"] = list(self.instance.events)

    def _post_clean(self):
        if self.cleaned_data.get("new_secret"):
            self.instance.secret = self.cleaned_data["new_secret"]
        super()._post_clean()
