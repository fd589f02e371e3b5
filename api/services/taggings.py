"""Writes of taggings: one tag on one person, a row of Supporter.tags' table."""

from django.db import transaction

from supporters.models import Supporter

Tagging = Supporter.tags.through


def tagging_create(*, tag_id: int, supporter_id: int) -> tuple[int, bool]:
    """Tag a supporter; return the tagging's id and whether this call made it.

    A second call for the same pair is harmless: it returns the tagging already there.
    """
    existing = (
        Tagging.objects.filter(tag_id=tag_id, supporter_id=supporter_id)
        .values_list("pk", flat=True)
        .first()
    )
    if existing is not None:
        return existing, False
    with transaction.atomic():
        # ignore_conflicts: a concurrent request may have made the same pair meanwhile.
        Tagging.objects.bulk_create(
            [Tagging(tag_id=tag_id, supporter_id=supporter_id)], ignore_conflicts=True
        )
        tagging_id = Tagging.objects.get(tag_id=tag_id, supporter_id=supporter_id).pk
    return tagging_id, True


def tagging_delete(*, tag_id: int, tagging_id: int) -> bool:
    """Remove a tagging; say whether there was one."""
    deleted, _ = Tagging.objects.filter(pk=tagging_id, tag_id=tag_id).delete()
    return bool(deleted)
