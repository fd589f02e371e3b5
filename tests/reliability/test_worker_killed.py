"""kill -9 of one part of a Celery worker mid-send over the Postmark API: its main process only,
or one of its pool processes only. (The whole worker at once: test_kill_9_reconciles_over_postmark.)

The settings the send queue relies on: acks_late, so a task is acknowledged only after it ran,
and reject_on_worker_lost, so the task of a pool process that died goes back to the queue.

- The main process killed: Celery sets PR_SET_PDEATHSIG on its pool processes, so the kernel
  kills them with it; none is left orphaned and sending. The tasks it held unacknowledged stay
  in Redis' unacked set for an hour (the visibility timeout), so beat's sweep restarts the
  chains from PostgreSQL.
- One pool process killed: the main process starts another and puts the dead one's task back
  in the queue; run again, that task claims a fresh batch. The batch the dead process held
  stays claimed until its lease runs out.

Either way the batch in flight becomes unknown, and the reconciler asks Postmark about it:
what Postmark accepted is marked sent, what it never accepted is sent once more. Each test
prints its figures as one JSON line (run with -s to see them).
"""

import json
import os
import signal

import pytest

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_send
from mailings.sending.reconcile.unknown import FOUND
from tests.factories import MailingFactory
from tests.processes import child_pids, wait_for
from tests.sending_helpers import (
    assert_each_received_exactly_once,
    assert_the_ledger_says_each_was_sent,
    make_audience,
    postmark_env,
    sent_count,
    wait_until_settled,
)

pytestmark = pytest.mark.slow

AUDIENCE = 10_000
Status = Delivery.Status
KILL_AT = pytest.mark.parametrize("kill_at", [0.3, 0.7], ids=["at_30_percent", "at_70_percent"])


def worker_env(esp: FakePostmark) -> dict[str, str]:
    """Short leases, stalls and reconciler delays, so that recovery takes seconds, not minutes."""
    return postmark_env(
        esp,
        RALLY_SEND_BATCH_SIZE=100,
        RALLY_SEND_LEASE_SECONDS=3,
        RALLY_SEND_STALL_SECONDS=2,
        RALLY_SWEEP_SECONDS=1,
        RALLY_RECONCILE_SECONDS=1,
        # Longer than the fake's search lag: a message accepted is listed by the time it is asked.
        RALLY_RECONCILE_DELAY_SECONDS=3,
    )


def fake_postmark() -> FakePostmark:
    # A batch request takes 200 ms, so a kill finds one in flight; the search lags the API by
    # half a second, as Postmark's does.
    return FakePostmark(record_bodies=False, search_lag_ms=500, latency_ms=200)


@KILL_AT
def test_kill_9_of_the_main_process_alone_takes_its_pool_along_nobody_mailed_twice_or_missed(
    celery_worker_factory, kill_at
):
    emails = make_audience(AUDIENCE)
    mailing = MailingFactory()
    with fake_postmark() as esp:
        victim = celery_worker_factory(**worker_env(esp))
        mailing_send(mailing=mailing)
        wait_until_a_batch_is_out_past(mailing, kill_at, victim)
        pool = child_pids(victim.process.pid)
        assert len(pool) == 2, pool
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        # The kernel kills the pool with its parent (PR_SET_PDEATHSIG): nothing sends on.
        wait_for(lambda: not any(map(is_alive, pool)), timeout=10, message="pool left running")
        received_at_kill = sum(esp.counts().values())
        left_claimed = claimed_count(mailing)
        survivor = celery_worker_factory(**worker_env(esp), beat=True)

        wait_until_settled(mailing, survivor)
        assert_each_received_exactly_once(esp, emails)
    report_figures(
        mailing,
        kill_at=kill_at,
        killed="main",
        received_at_kill=received_at_kill,
        left_claimed=left_claimed,
    )
    assert_the_ledger_says_each_was_sent(mailing, emails)


@KILL_AT
def test_kill_9_of_one_pool_process_is_replaced_its_task_rerun_and_nobody_mailed_twice_or_missed(
    celery_worker_factory, kill_at
):
    emails = make_audience(AUDIENCE)
    mailing = MailingFactory()
    with fake_postmark() as esp:
        worker = celery_worker_factory(**worker_env(esp), beat=True)
        mailing_send(mailing=mailing)
        claimed_by = wait_until_a_batch_is_out_past(mailing, kill_at, worker)
        # The pool process that holds the batch (claimed_by is "<worker name>:<pid>").
        victim = int(claimed_by.rsplit(":", 1)[1])
        # Its children: two pool processes and beat.
        children = child_pids(worker.process.pid)
        assert victim in children
        os.kill(victim, signal.SIGKILL)
        received_at_kill = sum(esp.counts().values())

        wait_until_settled(mailing, worker)
        assert_each_received_exactly_once(esp, emails)
        # The worker lived on, with a new pool process in place of the dead one.
        assert worker.process.poll() is None
        children_after = child_pids(worker.process.pid)
        assert victim not in children_after and len(children_after) == len(children)
        log = worker.log()
    assert f"pid:{victim} exited with 'signal 9 (SIGKILL)'" in log
    assert "WorkerLostError" in log
    report_figures(mailing, kill_at=kill_at, killed="pool", received_at_kill=received_at_kill)
    assert_the_ledger_says_each_was_sent(mailing, emails)


def wait_until_a_batch_is_out_past(mailing: Mailing, share: float, worker) -> str:
    """Wait until `share` of the audience is sent and a batch is claimed; return its claimant."""
    claimed = Delivery.objects.filter(mailing=mailing, status=Status.CLAIMED)
    return wait_for(
        lambda: (
            sent_count(mailing) >= share * AUDIENCE
            and claimed.values_list("claimed_by", flat=True).first()
        ),
        timeout=180,
        message=worker.log,
    )


def claimed_count(mailing: Mailing) -> int:
    return Delivery.objects.filter(mailing=mailing, status=Status.CLAIMED).count()


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it waits only for its parent to read its status.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def report_figures(mailing: Mailing, **figures) -> None:
    """Print what the crash left unknown and what the reconciler made of it, as one JSON line."""
    rows = Delivery.objects.filter(mailing=mailing)
    found_sent = rows.filter(error=FOUND).count()
    resent = rows.filter(resent_at__isnull=False).count()
    figures |= {
        "unknown_before_reconciliation": found_sent + resent,
        "found_accepted": found_sent,
        "proven_never_accepted_and_resent": resent,
        "unknown_after_reconciliation": mailing_delivery_counts(mailing)["unknown"],
    }
    print(json.dumps(figures))
    if "left_claimed" in figures:
        # Whether the kill finds a batch in flight is timing (the pool may record it between
        # the check and the kill, and a COMMIT sent just before the kill still lands): the
        # crash leaves unknown at most what it left claimed, and all of it is settled.
        assert figures["unknown_before_reconciliation"] <= figures["left_claimed"], figures
        assert figures["unknown_after_reconciliation"] == 0, figures
    else:
        assert figures["unknown_before_reconciliation"] > 0, (
            f"the crash left nothing unknown: {figures}"
        )
