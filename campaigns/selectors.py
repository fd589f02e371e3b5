"""Reads about petitions that span relations."""

from dataclasses import dataclass

from django.db.models import QuerySet

from .models import Petition, PetitionTranslation

# Goals a petition climbs through once it passes the one the campaigner set.
GOAL_STEPS = (1, 2.5, 5)


def petition_list_open() -> QuerySet[Petition]:
    """Return the open petitions, newest first."""
    return Petition.objects.filter(is_open=True).select_related("campaign")


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
        translation = PetitionTranslation.objects.filter(
            petition=petition, language=language
        ).first()
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
