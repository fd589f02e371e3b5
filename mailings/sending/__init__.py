"""Everything that can happen to a mailing and its deliveries: send, claim, record, finish.

How a send runs (the README's "How a mailing is sent"):
1. `mailing_send_request` (a campaigner, with the count confirmed), `mailing_approve` (a second
   campaigner, above RALLY_APPROVAL_THRESHOLD recipients) or `mailing_send` (beat, at a
   scheduled time) marks the mailing SENDING and queues the audience snapshot.
2. `delivery_snapshot` freezes the audience into one PENDING Delivery per supporter.
3. `mailing_send_batch` — run by up to RALLY_SEND_PARALLELISM task chains at once — claims a
   batch under a lease, renders and sends it over one connection, and records every outcome.
4. `mailing_finish_if_done` marks the mailing SENT once nothing is pending or claimed.
5. `mailing_check_esp_feedback` (after each batch and each bounce or complaint the ESP reports)
   pauses a mailing whose complaint or hard-bounce rate passes its limit (breaker.py).
6. `mailing_sweep` (beat) recovers what crashed workers and a forgetful Redis leave behind.

Crash policy. A claimed Delivery whose lease expired belonged to a worker that died between
claiming and recording. The ESP may have accepted some of its messages, and no ESP we send to
takes an idempotency key, so re-sending could mail someone twice: such rows become UNKNOWN and
are reported, never re-sent. Outcomes are recorded per batch, so at most one batch per dead
worker ends up UNKNOWN.

The room, by step: approval.py (asking, approving, scheduling), control.py (the state changes),
snapshot.py, batches.py (claim, render, send, record), breaker.py (the ESP's complaints and
bounces), backpressure.py (the shared rate limit and the ESP's 429s and 5xxs), errors.py (one
classifier of send errors), esp/ (one module per provider, `registry.py` picks), sweep.py,
test_send.py, campaigner_time.py (times in the campaigner's zone).
"""

from mailings.sending.approval import (
    SendRequestOutcome,
    mailing_approve,
    mailing_send_request,
    mailing_unschedule,
)
from mailings.sending.batches import (
    BatchOutcome,
    ClaimedDelivery,
    delivery_claim_batch,
    delivery_record_outcome,
    mailing_send_batch,
)
from mailings.sending.breaker import mailing_check_esp_feedback
from mailings.sending.control import (
    MailingStateError,
    mailing_cancel,
    mailing_finish_if_done,
    mailing_pause,
    mailing_resume,
    mailing_send,
    mailing_snapshot_and_start,
    mailing_start_batches,
)
from mailings.sending.snapshot import delivery_snapshot
from mailings.sending.sweep import mailing_sweep

__all__ = [
    "BatchOutcome",
    "ClaimedDelivery",
    "MailingStateError",
    "SendRequestOutcome",
    "delivery_claim_batch",
    "delivery_record_outcome",
    "delivery_snapshot",
    "mailing_approve",
    "mailing_cancel",
    "mailing_check_esp_feedback",
    "mailing_finish_if_done",
    "mailing_pause",
    "mailing_resume",
    "mailing_send",
    "mailing_send_batch",
    "mailing_send_request",
    "mailing_snapshot_and_start",
    "mailing_start_batches",
    "mailing_sweep",
    "mailing_unschedule",
]
