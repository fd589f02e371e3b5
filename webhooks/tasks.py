"""Celery tasks of outbound webhooks, on the `webhooks` queue: thin, taking ids.

One delivery per task, so a receiver that hangs holds one pool process for at most its
timeout, never a batch of other receivers' deliveries. Each task imports its service in its
body: services import this module to queue tasks (the rule in every app).
"""

from celery import shared_task
from django.conf import settings


def delivery_time_limit_seconds() -> float:
    """The longest one attempt may run before the pool process running it is replaced.

    An attempt's connect, answer and body reading are each bounded by
    RALLY_WEBHOOK_TIMEOUT_SECONDS (transport.py); this bounds whatever escapes those, e.g. a
    receiver trickling its headers a byte at a time.
    """
    return 3 * settings.RALLY_WEBHOOK_TIMEOUT_SECONDS + 10


@shared_task(
    ignore_result=True,
    soft_time_limit=delivery_time_limit_seconds() - 5,
    time_limit=delivery_time_limit_seconds(),
)
def webhook_delivery_task(delivery_id: int) -> None:
    from webhooks.services import webhook_delivery_attempt

    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def webhook_deliveries_sweep_task() -> None:
    """Queue the deliveries that are due (services.webhook_deliveries_queue_due)."""
    from webhooks.services import webhook_deliveries_queue_due

    webhook_deliveries_queue_due()
