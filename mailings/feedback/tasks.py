"""Celery tasks of the ESP's feedback, on the `tracking` queue: thin wrappers that take ids.

Each task imports its service in its body: intake and processing import this module to queue
tasks, so the import goes one way at module level.
"""

from celery import shared_task
from django.db import OperationalError


@shared_task(
    ignore_result=True,
    # A deadlock with another batch touching the same rows, a lost connection: the transaction
    # was rolled back, so the batch is safe to run again (the sweep would, a minute later).
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    max_retries=3,
)
def tracking_events_process_task(event_pks: list[int]) -> None:
    """Apply a batch of stored webhook events (as the web stored them together), once each."""
    from mailings.feedback.processing import tracking_events_process

    tracking_events_process(event_pks=event_pks)


@shared_task(ignore_result=True)
def tracking_event_sweep_task() -> None:
    from mailings.feedback.processing import tracking_event_sweep

    tracking_event_sweep()
