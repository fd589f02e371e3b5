"""The outbox backend (mailings/backends/outbox.py) keeps what it "sent" in its own table."""

from datetime import datetime

from mailings.models import OutboxMessage
from mailings.sending.reconcile.base import Accepted, Lookup, Reconciler


class OutboxReconciler(Reconciler):
    # A row is written in the send's own statement: nothing runs behind.
    search_lags = False

    def look_up(
        self, *, mailing_id: int, delivery_ids: list[int], since: datetime, until: datetime
    ) -> Lookup:
        """Read the outbox rows the deliveries' metadata names; one without a row was not sent."""
        rows = OutboxMessage.objects.filter(metadata__mailing_id=str(mailing_id)).filter(
            metadata__delivery_id__in=[str(pk) for pk in delivery_ids]
        )
        found = {
            int(delivery_id): Accepted(message_id=f"outbox-{pk}")
            for pk, delivery_id in rows.values_list("pk", "metadata__delivery_id")
        }
        return Lookup(answers={pk: found.get(pk) for pk in delivery_ids})
