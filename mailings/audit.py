"""The mailing audit log: who did what to which mailing, and how many it would reach."""

from mailings.models import Mailing, MailingAuditEntry


def mailing_audit_record(
    *,
    mailing: Mailing,
    action: MailingAuditEntry.Action,
    actor=None,
    recipient_count: int | None = None,
    detail: str = "",
) -> MailingAuditEntry:
    """Record one thing done to a mailing; `actor` None means Rally itself (beat, the breaker)."""
    return MailingAuditEntry.objects.create(
        mailing=mailing,
        mailing_name=mailing.name,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        recipient_count=recipient_count,
        detail=detail[:500],
    )
