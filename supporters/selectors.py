"""Reads about supporters for the pages they reach from their email."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from .models import Supporter


@dataclass(frozen=True)
class MailPreferences:
    """What the preference page shows a subscribed supporter of their own settings."""

    language: str
    # When their pause ends; None when mail is not paused (or the pause is over).
    paused_until: datetime | None


def supporter_mail_preferences(*, supporter_id: int) -> MailPreferences | None:
    """Return a subscribed supporter's language and running pause; None for anyone else."""
    row = (
        Supporter.objects.filter(pk=supporter_id, status=Supporter.Status.SUBSCRIBED)
        .values_list("language", "paused_until")
        .first()
    )
    if row is None:
        return None
    language, paused_until = row
    if paused_until is not None and paused_until <= timezone.now():
        paused_until = None
    return MailPreferences(language=language, paused_until=paused_until)
