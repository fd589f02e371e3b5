"""Confirming a signature: the emailed link's click, or a later signing that proves the address."""

from django.db import transaction
from django.utils import timezone

from campaigns.counters import petition_count_add
from campaigns.models import Signature
from supporters.services import supporter_subscribe


def signature_confirm(*, signature_id: int) -> Signature | None:
    """Confirm a signature; return it, or None when no such signature exists.

    Idempotent and race-free: only a missing confirmation time is set, so a link clicked twice
    (or by two tabs at once) counts once.
    """
    with transaction.atomic():
        confirmed = Signature.objects.filter(pk=signature_id, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
        signature = Signature.objects.select_related("petition").filter(pk=signature_id).first()
        if confirmed and signature is not None:
            if signature.consented:
                # The consent given when signing, now that the address is proved.
                supporter_subscribe(supporter_id=signature.supporter_id)
            petition_id = signature.petition_id
            transaction.on_commit(lambda: petition_count_add(petition_id))
    return signature
