"""Which reconciler asks a connection's ESP: the one place that knows every provider module."""

from anymail.backends.postmark import EmailBackend as PostmarkBackend

from mailings.sending.esp.outbox import EmailBackend as OutboxBackend
from mailings.sending.reconcile.base import Reconciler
from mailings.sending.reconcile.outbox import OutboxReconciler
from mailings.sending.reconcile.postmark import PostmarkReconciler


def reconciler_for(connection) -> Reconciler | None:
    """Return the reconciler for a connection's ESP, or None where it cannot be asked.

    Plain SMTP keeps no record Rally can read, and an ESP without a module here is not asked:
    their unknown deliveries stay unknown, and the mailing's progress page says so.
    """
    if isinstance(connection, PostmarkBackend):
        return PostmarkReconciler(connection)
    if isinstance(connection, OutboxBackend):
        return OutboxReconciler()
    return None
