"""Confirming a signature: the emailed link's click, or a later signing that proves the address."""

from django.db import transaction
from django.utils import timezone

from campaigns.counters import petition_count_add
from campaigns.models import Signature
from supporters.services import supporter_subscribe


def signature_confirm(*, signature_id: int, petition_id: int) -> Signature | None:
    """Confirm a signature of a petition; return it, or None when that petition has no such
    signature (a link posted to another petition's page confirms nothing).

    Idempotent and race-free: only a missing confirmation time is set, so a link clicked twice
    (or by two tabs at once) counts once.
    """
    signatures = Signature.objects.filter(pk=signature_id, petition_id=petition_id)
    with transaction.atomic():
        confirmed = signatures.filter(confirmed_at__isnull=True).update(confirmed_at=timezone.now())
        signature = signatures.select_related("petition").first()
        if confirmed and signature is not None:
            if signature.consented:
                # The consent given when signing, now that the address is proved.
                supporter_subscribe(supporter_id=signature.supporter_id)
            petition_id = signature.petition_id
            transaction.on_commit(lambda: petition_count_add(petition_id))
    return signature
