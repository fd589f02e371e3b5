"""The mailing forms of the admin: a mailing's content, and each language version of it."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import cached_property

from campaigns.forms import reject_control_characters
from mailings.content.body_editor import MailingBodyEditor
from mailings.content.compose import sanitize_mailing_html
from mailings.content.rendering import compile_mailing, compile_merge_template
from mailings.content.senders import Sender, allowed_senders, sender_validate
from mailings.models import Mailing, MailingVariant, MailingVersion

CONTENT_HELP_TEXTS = {
    "subject": 'May use merge fields, e.g. {{ first_name|default:"Friend" }}, join us.',
    "preheader": "The preview line inboxes show after the subject; may use merge fields.",
    # The admin shows help text as HTML: a bare <style> here would swallow the page.
    "html_body": "Write the letter in the editor: its menu inserts merge fields, the "
    "supporter's own petition link and a button. “Edit as HTML” shows the HTML, with merge "
    "fields such as {{ first_name }}. A &lt;style&gt; is inlined into the elements it styles; "
    "the layout adds the preheader and a footer with the organisation's address and an "
    "unsubscribe link.",
    "text_body": "Leave empty to have it made from the HTML, links shown as URLs; the "
    "footer is added either way.",
}


AB_SETTINGS_WITH_DEFAULTS = (
    "ab_wait_hours",
    "ab_metric",
    "ab_confidence",
    "ab_min_deliveries",
    "ab_without_winner",
)
# A mailing's purpose is kept as it is by a form posted without it (a script that predates it).
KEPT_WHEN_OMITTED = ("purpose",)


class HeaderChecks:
    """Check a subject and preheader as the send will compile them: a mailing's, a version's,
    an A/B variant's. Each error names the campaigner's own line."""

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"]
        compile_merge_template(subject, html=False)
        return subject

    def clean_preheader(self) -> str:
        preheader = self.cleaned_data["preheader"]
        # Shown inside the HTML, so checked as HTML.
        compile_merge_template(preheader, html=True)
        return preheader


class ContentChecks(HeaderChecks):
    """Check a subject, preheader and bodies as the send will compile them; save nothing else.

    Shared by the mailing and its language versions, so every version that saves is one that
    sends. Each error names the campaigner's own line.
    """

    def layout_language(self) -> str:
        """The language the layout's footer is compiled in (a version's own)."""
        return ""

    def clean_text_body(self) -> str:
        text = self.cleaned_data["text_body"]
        compile_merge_template(text, html=False)
        return text

    def clean_html_body(self) -> str:
        html = self.cleaned_data["html_body"]
        # On the source as written, so that an error's line is the campaigner's line.
        compile_merge_template(html, html=True)
        return sanitize_mailing_html(html)

    def check_compiles(self, cleaned_data: dict) -> None:
        parts = ("subject", "preheader", "html_body", "text_body")
        if all(part in cleaned_data for part in parts):
            # The layout and the plain text made from the HTML, as the send will compile them.
            try:
                compile_mailing(
                    **{part: cleaned_data[part] for part in parts},
                    language=self.layout_language(),
                )
            except ValidationError as error:
                self.add_error(None, error)


class MailingAdminForm(ContentChecks, forms.ModelForm):
    """Check the sender, merge fields and layout when the mailing is saved, not when it is sent.

    Nothing is saved while any check fails; each error names the campaigner's line.
    """

    sender = forms.ChoiceField(
        help_text="The organisation's sending addresses (RALLY_SENDERS): mail from any other "
        "domain fails receivers' DMARC checks and goes to spam."
    )

    class Meta:
        model = Mailing
        fields = "__all__"  # noqa: DJ007 -- the ModelAdmin chooses the fields shown
        help_texts = CONTENT_HELP_TEXTS
        widgets = {"html_body": MailingBodyEditor}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The sender is chosen whole; the model keeps its three fields, filled in clean().
        for name in ("from_name", "from_email", "reply_to"):
            self.fields.pop(name, None)
        if "text_body" in self.fields:
            self.fields["text_body"].required = False
        # The A/B test's settings have defaults, which a form posted without them (a script, a
        # mailing that tests nothing) keeps.
        for name in (*AB_SETTINGS_WITH_DEFAULTS, *KEPT_WHEN_OMITTED):
            if name in self.fields:
                self.fields[name].required = False
        self.senders = {sender.key: sender for sender in allowed_senders()}
        mailing = self.instance
        current = Sender(mailing.from_name, mailing.from_email, mailing.reply_to)
        if mailing.from_email:
            # A sender no longer on the list stays selectable, so the form can say what is wrong.
            self.senders.setdefault(current.key, current)
        self.fields["sender"].choices = [(key, s.label) for key, s in self.senders.items()]
        self.fields["sender"].initial = (
            current.key if mailing.from_email else next(iter(self.senders), None)
        )
        if mailing.pk and mailing.status not in (Mailing.Status.DRAFT, Mailing.Status.SCHEDULED):
            self.fields["sender"].disabled = True

    @cached_property
    def changed_data(self) -> list[str]:
        """The fields changed, bar settings the post left out (their defaults are kept)."""
        omitted = {
            name
            for name in (*AB_SETTINGS_WITH_DEFAULTS, *KEPT_WHEN_OMITTED)
            if name in self.fields
            and self.fields[name].widget.value_omitted_from_data(
                self.data, self.files, self.add_prefix(name)
            )
        }
        return [name for name in super().changed_data if name not in omitted]

    def clean_sender(self) -> str:
        key = self.cleaned_data["sender"]
        if not self.fields["sender"].disabled:
            sender_validate(email=self.senders[key].email)
        return key

    def clean(self):
        cleaned_data = super().clean()
        for name in AB_SETTINGS_WITH_DEFAULTS:
            if name in self.fields and cleaned_data.get(name) in (None, ""):
                cleaned_data[name] = Mailing._meta.get_field(name).get_default()
        for name in KEPT_WHEN_OMITTED:
            if name in self.fields and not cleaned_data.get(name):
                cleaned_data[name] = getattr(self.instance, name)
        sender = self.senders.get(cleaned_data.get("sender"))
        if sender is not None and not self.fields["sender"].disabled:
            self.instance.from_name = sender.name
            self.instance.from_email = sender.email
            self.instance.reply_to = sender.reply_to
        self.check_compiles(cleaned_data)
        return cleaned_data


class MailingVersionForm(ContentChecks, forms.ModelForm):
    """One language version of a mailing, checked as the mailing itself is."""

    class Meta:
        model = MailingVersion
        fields = ["language", "subject", "preheader", "html_body", "text_body"]
        help_texts = CONTENT_HELP_TEXTS
        widgets = {"html_body": MailingBodyEditor}

    def layout_language(self) -> str:
        return self.cleaned_data.get("language", "")

    def clean(self):
        cleaned_data = super().clean()
        self.check_compiles(cleaned_data)
        return cleaned_data


class MailingVariantForm(HeaderChecks, forms.ModelForm):
    """What one A/B variant changes, in one language version: checked as the mailing's are."""

    class Meta:
        model = MailingVariant
        fields = ["label", "language", "subject", "preheader", "from_name"]

    def clean_from_name(self) -> str:
        from_name = self.cleaned_data["from_name"]
        # It goes into the From header, where a line break fails the whole send.
        reject_control_characters(from_name)
        return from_name


class MailingVariantFormSet(forms.BaseInlineFormSet):
    """The variants of a mailing's A/B test, checked together and against the test's share.

    The admin builds this formset on the mailing as its form left it, so the share and the
    subject here are the ones being saved with it.
    """

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        rows = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        mailing = self.instance
        if mailing.ab_test_share is None:
            if rows:
                raise ValidationError(
                    "Variants are sent only in an A/B test: set the test share, or delete the "
                    "variants."
                )
            return
        if not rows:
            raise ValidationError(
                "An A/B test needs at least two variants: add variant B below (A is the "
                "mailing as written), or leave the test share empty."
            )
        languages = {""} | self._version_languages()
        changes: dict[str, set[tuple]] = {}
        for row in rows:
            if row["language"] not in languages:
                raise ValidationError(
                    f"Variant {row['label']} is for {row['language']}, which has no language "
                    "version: add that version, or choose the default content."
                )
            change = tuple(
                (row["language"], field, row[field])
                for field in ("subject", "preheader", "from_name")
                if row[field] and row[field] != self._a_value(row["language"], field)
            )
            changes.setdefault(row["label"], set()).update(change)
        for label, change in changes.items():
            if not change:
                raise ValidationError(
                    f"Variant {label} is the same as A: give it its own subject, preheader or "
                    "sender name."
                )
        labels = sorted(changes)
        for position, label in enumerate(labels):
            for other in labels[position + 1 :]:
                if changes[label] == changes[other]:
                    raise ValidationError(
                        f"Variants {label} and {other} are the same: change one of them."
                    )

    def _a_value(self, language: str, field: str) -> str:
        """What variant A, the mailing as written, has for a field in a language version."""
        if field == "from_name":
            return self.instance.from_name
        if language:
            version = self.instance.versions.filter(language=language).first()
            return getattr(version, field, "") if version else ""
        return getattr(self.instance, field)

    def _version_languages(self) -> set[str]:
        """The languages of the mailing's versions, saved or being added in the same form."""
        saved = (
            set(self.instance.versions.values_list("language", flat=True))
            if self.instance.pk
            else set()
        )
        posted = {
            value
            for key, value in self.data.items()
            if key.startswith("versions-") and key.endswith("-language") and value
        }
        return saved | posted
