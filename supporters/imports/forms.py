"""The admin's import forms: the upload, then the columns."""

from django import forms

from .mapping import FIELDS
from .reading import ENCODINGS

MAPPING_CHOICES = [("", "— ignore this column —"), *FIELDS.items()]


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="A CSV file: comma, semicolon or tab separated, header first.")
    tags = forms.CharField(
        max_length=1000,
        help_text="Tags for every imported supporter, new or known, separated by commas. "
        "Tags that do not exist yet are made.",
    )
    consent_source = forms.CharField(
        max_length=500,
        help_text="Where these people agreed to hear from you (a page, an event, a form).",
    )
    consent_wording = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The exact words they agreed to. Kept as each new supporter's consent record.",
    )
    encoding = forms.ChoiceField(
        choices=[("", "Guess (UTF-8, else Windows-1251 or -1252)"), *ENCODINGS.items()],
        required=False,
    )

    def tag_names(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["tags"].split(",") if name.strip()]


class ImportMappingForm(forms.Form):
    """One choice per column of the file's header, guessed first."""

    def __init__(self, *args, headers: list[str], mapping: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = headers
        for index, header in enumerate(headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header or f"(column {index + 1})",
                choices=MAPPING_CHOICES,
                required=False,
                initial=mapping[index] if index < len(mapping) else "",
            )

    def mapping(self) -> list[str]:
        return [self.cleaned_data[f"column_{index}"] for index in range(len(self.headers))]
