from django.db import models
from django.urls import reverse

from config.lib.richtext import sanitize_html
from supporters.models import Language, Supporter


class Campaign(models.Model):
    """A cause that petitions and mailings belong to, e.g. "Free Aleksei Navalny"."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Petition(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="petitions")
    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    # Sanitised HTML (see config/lib/richtext.py): the case for signing.
    body = models.TextField()
    # Who the petition is addressed to, e.g. "President of the Russian Federation".
    target = models.CharField(max_length=200)
    goal = models.PositiveIntegerField(default=1000)
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.ENGLISH)
    is_open = models.BooleanField(default=True, db_index=True)
    requires_confirmation = models.BooleanField(
        default=False, help_text="Ask signers to confirm their email before their signature counts."
    )
    # Shown beside the consent checkbox and stored word for word in each ConsentRecord.
    consent_wording = models.TextField(
        default="Keep me informed about this and other campaigns by email. "
        "I can unsubscribe at any time."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("campaigns:petition_detail", kwargs={"slug": self.slug})


class PetitionTranslation(models.Model):
    """A petition's text in another language, shown to readers whose page is in it."""

    petition = models.ForeignKey(Petition, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=8, choices=Language.choices)
    title = models.CharField(max_length=200)
    # Sanitised HTML, like Petition.body.
    body = models.TextField()
    target = models.CharField(max_length=200, blank=True, help_text="Blank: the petition's own.")
    # Stored word for word in the ConsentRecord of whoever signs in this language.
    consent_wording = models.TextField(blank=True, help_text="Blank: the petition's own.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["petition", "language"], name="petition_translation_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.petition} ({self.language})"

    def save(self, *args, **kwargs):
        # Whatever path it came by (admin, shell, import), only sanitised HTML is stored.
        self.body = sanitize_html(self.body)
        super().save(*args, **kwargs)


class Signature(models.Model):
    petition = models.ForeignKey(Petition, on_delete=models.CASCADE, related_name="signatures")
    supporter = models.ForeignKey(Supporter, on_delete=models.CASCADE, related_name="signatures")
    created_at = models.DateTimeField(auto_now_add=True)
    # Null until the signer confirms by email, for petitions that require confirmation;
    # set at signing time otherwise.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The mailing whose link brought this signature, credited from a signed link token.
    mailing = models.ForeignKey(
        "mailings.Mailing",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="signatures",
    )
    # A share ref such as "whatsapp" or "mailing", for reporting.
    source = models.CharField(max_length=100, blank=True)
    # The signer ticked the consent box. On a petition that asks for confirmation, that
    # subscribes them when they confirm: an address nobody has proved is never mailed.
    consented = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["petition", "supporter"], name="signature_petition_supporter_unique"
            ),
        ]
        # Exports carry supporters' personal data: a permission of their own, apart from
        # viewing signatures in the admin.
        permissions = [("export_signatures", "Can export a petition's signers")]

    def __str__(self) -> str:
        return f"{self.supporter} signed {self.petition}"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None
