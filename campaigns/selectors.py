"""Reads about petitions that span relations."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from .models import Petition

# Goals a petition climbs through once it passes the one the campaigner set.
GOAL_STEPS = (1, 2.5, 5)


def petition_list_open() -> QuerySet[Petition]:
    """Return the open petitions, newest first."""
    return Petition.objects.filter(is_open=True).select_related("campaign")


# slug → (when it was read, the petition with its translations); see petition_published.
_published: dict[str, tuple[float, Petition]] = {}
PUBLISHED_CACHE_SIZE = 1000


def petition_published(slug: str) -> Petition | None:
    """Return the petition at this slug with its translations, as read at most a few seconds ago.

    The petition page and its sign form are the hottest path of a surge. Each web process keeps
    what it read for RALLY_PETITION_CACHE_SECONDS, so an edit shows within that time. Signing
    never trusts it: the write itself checks that the petition is still open.
    """
    max_age = settings.RALLY_PETITION_CACHE_SECONDS
    now = time.monotonic()
    cached = _published.get(slug)
    if cached is not None and now - cached[0] < max_age:
        return cached[1]
    petition = Petition.objects.filter(slug=slug).prefetch_related("translations").first()
    if petition is None or max_age <= 0:
        return petition
    if len(_published) >= PUBLISHED_CACHE_SIZE:
        _published.clear()  # many slugs, e.g. a crawler: start again rather than grow
    _published[slug] = (now, petition)
    return petition


@dataclass(frozen=True)
class PetitionContent:
    """What a petition says, in one language."""

    language: str
    title: str
    body: str  # sanitised HTML
    target: str
    consent_wording: str


def petition_content(petition: Petition, language: str | None) -> PetitionContent:
    """Return the petition's text in `language` when it has a translation, else its own."""
    language = (language or "")[:2]
    if language and language != petition.language:
        # A loop, not a query, so that a prefetched petition (petition_published) needs none.
        translation = next(
            (each for each in petition.translations.all() if each.language == language), None
        )
        if translation is not None:
            return PetitionContent(
                language=translation.language,
                title=translation.title,
                body=translation.body,
                target=translation.target or petition.target,
                consent_wording=translation.consent_wording or petition.consent_wording,
            )
    return PetitionContent(
        language=petition.language,
        title=petition.title,
        body=petition.body,
        target=petition.target,
        consent_wording=petition.consent_wording,
    )


def petition_goal(petition: Petition, count: int) -> int:
    """Return the goal to show: the campaigner's, or once passed the next round number.

    1,000 reached becomes 2,500, then 5,000, 10,000, 25,000… so the thermometer is never full.
    """
    if count < petition.goal:
        return petition.goal
    magnitude = 1
    while True:
        for step in GOAL_STEPS:
            candidate = int(step * magnitude)
            if candidate > count and candidate > petition.goal:
                return candidate
        magnitude *= 10


def petition_suggestion(petition: Petition, language: str | None) -> Petition | None:
    """Suggest another open petition to sign next, preferring the reader's language."""
    others = Petition.objects.filter(is_open=True).exclude(pk=petition.pk)
    language = (language or "")[:2]
    return others.filter(language=language).first() or others.first()
