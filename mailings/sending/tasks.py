"""Celery tasks of the send queue: thin wrappers that take ids and call one service.

mailing_test_send_task runs on the default `transactional` queue, so a campaigner waiting for
a test copy never waits behind a bulk send. Each task imports its service in its body:
services import this module to queue tasks, so the import goes one way at module level (the
rule in every app).
"""

import os
import smtplib

import structlog
from anymail.exceptions import AnymailAPIError
from celery import shared_task

from config.heartbeats import sweep_run_record


@shared_task(ignore_result=True)
def mailing_snapshot_task(mailing_id: int) -> None:
    from mailings.sending import mailing_snapshot_and_start

    with structlog.contextvars.bound_contextvars(mailing_id=mailing_id):
        mailing_snapshot_and_start(mailing_id=mailing_id)


@shared_task(bind=True, ignore_result=True)
def mailing_send_batch_task(self, mailing_id: int, attempt: int = 0) -> None:
    """Send one batch, then queue the next link of this chain while work remains.

    Fan-out is by chain, never one task per recipient, so the broker stays small whatever the
    audience size; a duplicated task is harmless because claiming is atomic.
    """
    from mailings.sending import mailing_send_batch

    worker = f"{self.request.hostname or 'local'}:{os.getpid()}"
    outcome = mailing_send_batch(mailing_id=mailing_id, worker=worker, attempt=attempt)
    if outcome.retry_after is not None:
        mailing_send_batch_task.apply_async(
            (mailing_id, attempt + 1), countdown=outcome.retry_after
        )
    elif outcome.wait_seconds is not None:
        mailing_send_batch_task.apply_async((mailing_id, attempt), countdown=outcome.wait_seconds)
    elif outcome.more:
        mailing_send_batch_task.delay(mailing_id)


@shared_task(ignore_result=True)
def mailing_sweep_task() -> None:
    """Run the sweep, then record that it ran: /healthz reports beat's last run from it."""
    from mailings.sending import mailing_sweep

    mailing_sweep()
    sweep_run_record()


@shared_task(ignore_result=True)
def mailing_sunset_task() -> None:
    """Suppress the silent recipients of re-permission mailings past their grace. By beat."""
    from mailings.sending.sunset import mailings_apply_due_sunsets

    mailings_apply_due_sunsets()


@shared_task(bind=True, ignore_result=True)
def delivery_reconcile_unknown_task(self) -> None:
    """Ask the ESP about unknown deliveries (mailings/sending/reconcile/). By beat."""
    from mailings.sending.reconcile import delivery_reconcile_unknown

    delivery_reconcile_unknown(worker=f"{self.request.hostname or 'local'}:{os.getpid()}")


@shared_task(
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError, AnymailAPIError),
    retry_backoff=5,
    max_retries=5,
)
def mailing_test_send_task(mailing_id: int, supporter_id: int | None, addresses: list[str]) -> None:
    from mailings.sending.test_send import mailing_test_copies_send

    with structlog.contextvars.bound_contextvars(mailing_id=mailing_id):
        mailing_test_copies_send(
            mailing_id=mailing_id, supporter_id=supporter_id, addresses=addresses
        )


@shared_task(ignore_result=True)
def mailing_check_esp_feedback_task(mailing_id: int) -> None:
    """Check a mailing's complaint and bounce rates once more, after a throttled check skipped."""
    from mailings.sending.breaker import mailing_check_esp_feedback_now

    with structlog.contextvars.bound_contextvars(mailing_id=mailing_id):
        mailing_check_esp_feedback_now(mailing_id=mailing_id)
