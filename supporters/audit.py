"""The list's audit log: who took personal data out of Rally, or removed it."""

from .models import SupporterAuditEntry


def supporter_audit_record(
    *,
    action: str,
    actor=None,
    row_count: int | None = None,
    detail: str = "",
) -> SupporterAuditEntry:
    """Record that `actor` (a user, or None for the command line) did `action`.

    `detail` says what was taken or removed (a filter, a petition, a supporter's id) and must
    never hold an email: the log outlives any erasure. The actor's name is copied, so the
    record outlives the account too.
    """
    return SupporterAuditEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        row_count=row_count,
        detail=detail[:500],
    )
