"""Celery tasks of petitions: thin wrappers that take ids and call one service.

They run on the default `transactional` queue, so a confirmation email never waits behind a
bulk send. Each imports its service in its body: services import this module to queue tasks,
so the import goes one way at module level (the rule in every app).
"""

import smtplib

from anymail.exceptions import AnymailAPIError
from celery import shared_task


@shared_task(
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError, AnymailAPIError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def signature_confirmation_email_task(signature_id: int) -> None:
    from .confirmation import signature_confirmation_email_send

    signature_confirmation_email_send(signature_id=signature_id)


@shared_task(ignore_result=True)
def petition_counts_reconcile_task() -> None:
    from .counters import petition_counts_reconcile

    petition_counts_reconcile()
