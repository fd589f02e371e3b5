"""Reads about petitions that span relations."""

from django.db.models import QuerySet

from .models import Petition, Signature


def petition_list_open() -> QuerySet[Petition]:
    """Return the open petitions, newest first."""
    return Petition.objects.filter(is_open=True).select_related("campaign")


def petition_signature_count(petition: Petition) -> int:
    """Return how many confirmed signatures a petition has."""
    return Signature.objects.filter(petition=petition, confirmed_at__isnull=False).count()
