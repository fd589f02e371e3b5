"""Ask the ESP about deliveries left unknown by a crash, and settle each one it can answer for.

unknown.py is the service beat runs (`delivery_reconcile_unknown`) and what the progress page
shows of it (`mailing_unknown_summary`); base.py the question one ESP answers; postmark.py
and outbox.py the ESPs that can be asked; registry.py picks one for the configured backend.
Plain SMTP, and any ESP without a module here, cannot be asked: their unknown deliveries stay
unknown, and the progress page says so.
"""

from mailings.sending.reconcile.unknown import (
    ReconcileOutcome,
    UnknownSummary,
    delivery_reconcile_unknown,
    mailing_unknown_summary,
)

__all__ = [
    "ReconcileOutcome",
    "UnknownSummary",
    "delivery_reconcile_unknown",
    "mailing_unknown_summary",
]
