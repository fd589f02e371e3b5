"""The engagement a supporter's admin page shows, read-only: what the workers keep of them."""

from django.contrib import admin
from django.core.exceptions import ObjectDoesNotExist

from .engagement import tier_of
from .models import Engagement, SegmentCondition, Supporter

ENGAGEMENT_FIELDS = (
    "engagement_tier",
    "engagement_last_mailed_at",
    "engagement_last_opened_at",
    "engagement_last_clicked_at",
    "engagement_last_acted_at",
    "engagement_mailings_since_engaged",
)
NEVER = "never"


def _engagement(supporter: Supporter) -> Engagement | None:
    if supporter.pk is None:
        return None
    try:
        return supporter.engagement
    except ObjectDoesNotExist:
        return None  # never mailed, never engaged


class EngagementFieldsMixin:
    """Add the engagement fields, read-only, to the end of a supporter's change page."""

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + ENGAGEMENT_FIELDS if obj is not None else fields

    @admin.display(description="engagement tier")
    def engagement_tier(self, supporter: Supporter) -> str:
        tier = tier_of(_engagement(supporter), joined_at=supporter.created_at)
        return SegmentCondition.Tier(tier).label

    @admin.display(description="last mailed")
    def engagement_last_mailed_at(self, supporter: Supporter):
        return _time(supporter, "last_mailed_at")

    @admin.display(description="last opened (approximate)")
    def engagement_last_opened_at(self, supporter: Supporter):
        return _time(supporter, "last_opened_at")

    @admin.display(description="last clicked")
    def engagement_last_clicked_at(self, supporter: Supporter):
        return _time(supporter, "last_clicked_at")

    @admin.display(description="last acted (signed)")
    def engagement_last_acted_at(self, supporter: Supporter):
        return _time(supporter, "last_acted_at")

    @admin.display(description="mailings since last engaged")
    def engagement_mailings_since_engaged(self, supporter: Supporter) -> int:
        engagement = _engagement(supporter)
        return engagement.mailings_since_engaged if engagement else 0


def _time(supporter: Supporter, field: str):
    engagement = _engagement(supporter)
    value = getattr(engagement, field) if engagement else None
    return value or NEVER
