"""Saved segments: named, reusable audiences made of conditions.

A segment speaks of petitions and mailings, which live in the apps above this one; it names
them by string (`"campaigns.Petition"`), and the code that turns a segment into a query of
supporters lives in mailings (mailings/segments.py), which may import them (the layer rule).
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django_countries.fields import CountryField


class Segment(models.Model):
    """A named audience: supporters who match all (or any) of its conditions.

    Only the mailable are ever in it (supporters.models.MAILABLE), as in a mailing's audience.
    A mailing may take a segment as its audience, with its own conditions on top; its snapshot
    freezes the membership at send time.
    """

    class Match(models.TextChoices):
        ALL = "all", "Every condition"
        ANY = "any", "Any condition"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ALL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentCondition(models.Model):
    """One condition of a segment; `negate` turns it into its opposite ("has not …").

    Each kind reads the fields it names below and no other; the form refuses a condition
    whose fields do not fit its kind.
    """

    class Kind(models.TextChoices):
        HAS_TAG = "has_tag", "Has tag"  # tag
        SIGNED_PETITION = "signed_petition", "Signed petition"  # petition, days (or ever)
        # mailing (or any mailing), days (or ever)
        RECEIVED = "received", "Received a mailing"
        OPENED = "opened", "Opened a mailing"
        CLICKED = "clicked", "Clicked in a mailing"
        SIGNED_FROM_MAILING = "signed_from_mailing", "Signed from a mailing"
        LANGUAGE = "language", "Language"  # language
        COUNTRY = "country", "Country"  # country
        SOURCE = "source", "Source"  # source
        SUBSCRIBED_BEFORE = "subscribed_before", "Joined before"  # date
        SUBSCRIBED_AFTER = "subscribed_after", "Joined on or after"  # date
        ENGAGEMENT_TIER = "engagement_tier", "Engagement tier"  # tier

    class Tier(models.TextChoices):
        ACTIVE = "active", "Active"
        LAPSING = "lapsing", "Lapsing"
        DORMANT = "dormant", "Dormant"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    negate = models.BooleanField("not", default=False, help_text="Match those who do not.")
    tag = models.ForeignKey(
        "supporters.Tag", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    petition = models.ForeignKey(
        "campaigns.Petition", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    mailing = models.ForeignKey(
        "mailings.Mailing",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Leave empty for any mailing.",
    )
    days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Within this many days; leave empty for ever.",
    )
    language = models.CharField(max_length=8, blank=True)
    country = CountryField(blank=True)
    source = models.CharField(max_length=100, blank=True)
    date = models.DateField(null=True, blank=True)
    tier = models.CharField(max_length=8, choices=Tier.choices, blank=True)

    class Meta:
        ordering = ["segment", "id"]

    def __str__(self) -> str:
        return f"{'not ' if self.negate else ''}{self.get_kind_display().lower()}"
