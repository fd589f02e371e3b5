"""Celery tasks of petitions: thin wrappers that take ids and call one service.

They run on the default `transactional` queue, so a confirmation email never waits behind a
bulk send.
"""

import smtplib

from anymail.exceptions import AnymailAPIError
from celery import shared_task

from . import services
from .counters import petition_counts_reconcile


@shared_task(
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError, AnymailAPIError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def signature_confirmation_email_task(signature_id: int) -> None:
    services.signature_confirmation_email_send(signature_id=signature_id)


@shared_task(ignore_result=True)
def petition_counts_reconcile_task() -> None:
    petition_counts_reconcile()
