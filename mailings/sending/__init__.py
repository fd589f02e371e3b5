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
7. `delivery_reconcile_unknown` (beat) asks the ESP about deliveries left UNKNOWN.

Crash policy. A claimed Delivery whose lease expired belonged to a worker that died between
claiming and recording. The ESP may have accepted some of its messages, and no ESP we send to
takes an idempotency key, so re-sending could mail someone twice: such rows become UNKNOWN,
never re-sent blindly (as do rows whose ESP answer was lost on the way back). Outcomes are
recorded per batch, so at most one batch per dead worker ends up UNKNOWN.

Then Rally asks the ESP (reconcile/), by the metadata every message carries (delivery_id,
mailing_id), RALLY_RECONCILE_DELAY_SECONDS after the row became UNKNOWN, once the ESP's
search has caught up with what it accepted (checked against a later delivery it is known to
have accepted, where one exists). What the ESP accepted becomes SENT with its message id.
What its record proves it never accepted goes back to PENDING and through the normal claim,
once: `Delivery.resent_at` is set by the same conditional UPDATE, and a row that has it is
never put back again. What the ESP cannot answer for yet (a 5xx, a timeout, a search behind)
is asked again later, up to RALLY_RECONCILE_MAX_ATTEMPTS times, then stays UNKNOWN with the
reason. Where the ESP cannot be asked at all (plain SMTP) rows stay UNKNOWN, and the progress
page says how many and why.

The room, by step: approval.py (asking, approving, scheduling), control.py (the state changes),
snapshot.py, batches.py (claim, render, send, record), breaker.py (the ESP's complaints and
bounces), backpressure.py (the shared rate limit and the ESP's 429s and 5xxs), errors.py (one
classifier of send errors), esp/ (one module per provider, `registry.py` picks), sweep.py,
reconcile/ (asking the ESP about unknown deliveries, one module per provider), test_send.py,
campaigner_time.py (times in the campaigner's zone).
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
