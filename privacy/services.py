"""GDPR writes: hand one person their data (audited), and erase them.

Erasure (GDPR art. 17) walks privacy/scrubbers.py's SCRUBBERS in one transaction: the
supporter's row and their signatures and deliveries stay as anonymous counts, everything that
names them goes, and a keyed hash of their address goes on the suppression list so that no
import brings them back. Only a fresh signature of their own makes them a supporter again,
as a new row with their new consent.
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from supporters.audit import supporter_audit_record
from supporters.models import Supporter, SupporterAuditEntry
from supporters.signals import supporter_erasing
from supporters.suppression import email_is_suppressed, email_suppress

from .scrubbers import SCRUBBERS, ErasureSubject
from .selectors import supporter_by_email, supporter_personal_data


class SupporterNotFound(Exception):
    """No supporter has this id or address."""


def supporter_data_export(*, supporter_id: int, actor=None) -> dict[str, Any]:
    """Return one supporter's data (supporter_personal_data), recorded in the audit log."""
    supporter = Supporter.objects.filter(pk=supporter_id).first()
    if supporter is None:
        raise SupporterNotFound(f"There is no supporter #{supporter_id}.")
    data = supporter_personal_data(supporter=supporter)
    supporter_audit_record(
        action=SupporterAuditEntry.Action.EXPORTED_PERSON,
        actor=actor,
        row_count=1,
        detail=f"Data of supporter #{supporter_id}" + ("" if actor else ", from the command line"),
    )
    return data


@dataclass(frozen=True)
class ErasureResult:
    """What an erasure did: whose row, and how many rows it changed in each table."""

    # None when Rally held no supporter with the address.
    supporter_id: int | None
    # Rows changed per table (scrubber label), only the tables where something changed.
    changed: dict[str, int] = field(default_factory=dict)
    # The supporter had been erased before, so nothing was left to remove; for an address not
    # held, it was on the suppression list already.
    already_erased: bool = False

    @property
    def table_count(self) -> int:
        return len(self.changed)


def _erase(subject: ErasureSubject, *, actor) -> ErasureResult:
    if subject.supporter_id is not None:
        supporter_erasing.send(sender=Supporter, supporter_id=subject.supporter_id)
    email_suppress(subject.email)
    changed = {}
    for scrubber in SCRUBBERS:
        count = scrubber.scrub(scrubber.rows(subject), subject)
        if count:
            changed[scrubber.label] = count
    who = f"supporter #{subject.supporter_id}" if subject.supporter_id else "an address not held"
    supporter_audit_record(
        action=SupporterAuditEntry.Action.ERASED,
        actor=actor,
        row_count=sum(changed.values()),
        detail=f"Erased {who}: {len(changed)} tables changed"
        + ("" if actor else ", from the command line"),
    )
    return ErasureResult(supporter_id=subject.supporter_id, changed=changed)


def supporter_erase(*, supporter_id: int, actor=None) -> ErasureResult:
    """Remove a supporter's personal data from every table, in one transaction.

    Safe to call twice: a supporter already erased is left as they are. Raises
    SupporterNotFound for an id that names nobody.
    """
    with transaction.atomic():
        # Locked, so a signature arriving meanwhile waits and then finds the address free.
        supporter = Supporter.objects.select_for_update().filter(pk=supporter_id).first()
        if supporter is None:
            raise SupporterNotFound(f"There is no supporter #{supporter_id}.")
        if supporter.status == Supporter.Status.ERASED:
            return ErasureResult(supporter_id=supporter_id, already_erased=True)
        return _erase(ErasureSubject(supporter.pk, supporter.email), actor=actor)


def email_erase(*, email: str, actor=None) -> ErasureResult:
    """Erase whoever Rally holds with this address, or, holding nobody, what names it.

    An address with no supporter is still put on the suppression list, and events, outbox
    mail and logs that quote it are scrubbed: someone asking to be forgotten before (or after)
    they were ever imported means that no later import should add them. Only the keyed hash
    is kept, which names nobody.
    """
    email = email.strip().lower()
    supporter = supporter_by_email(email)
    if supporter is not None:
        return supporter_erase(supporter_id=supporter.pk, actor=actor)
    with transaction.atomic():
        already = email_is_suppressed(email)
        result = _erase(ErasureSubject(None, email), actor=actor)
    return ErasureResult(supporter_id=None, changed=result.changed, already_erased=already)
