"""Two beat schedulers at once, as when an operator starts a second `celery beat` by mistake or
a deployment runs beat on every worker machine: every periodic task runs twice.

The sweep starts scheduled mailings, recovers stalled ones and decides A/B tests; each of those
is a conditional change, so a second scheduler finds the work done and changes nothing.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from espfakes import FakePostmark
from mailings.models import Mailing, MailingAuditEntry, MailingVariant
from tests.factories import MailingFactory
from tests.processes import wait_for
from tests.sending_helpers import (
    assert_each_received_exactly_once,
    assert_the_ledger_says_each_was_sent,
    make_audience,
    postmark_env,
    sent_count,
    wait_until_finished,
)

pytestmark = pytest.mark.slow

Action = MailingAuditEntry.Action


def test_two_beats_start_a_scheduled_ab_test_once_decide_it_once_and_mail_nobody_twice(
    celery_worker_factory,
):
    emails = make_audience(10_000)
    with FakePostmark(record_bodies=False) as esp:
        env = postmark_env(
            esp,
            RALLY_SEND_BATCH_SIZE=100,
            RALLY_SWEEP_SECONDS=1,
            # Both sweeps queue more chains whenever no batch was claimed for a second.
            RALLY_SEND_STALL_SECONDS=1,
        )
        workers = [celery_worker_factory(**env, beat=True) for _ in range(2)]
        for worker in workers:
            wait_for(
                lambda worker=worker: "beat: Starting" in worker.log(),
                timeout=60,
                message=worker.log,
            )
        # Due now: both schedulers' sweeps find it within a second of each other.
        mailing = MailingFactory(
            status=Mailing.Status.SCHEDULED,
            scheduled_at=timezone.now(),
            subject="Subject A",
            ab_test_share=20,
            ab_min_deliveries=5,
        )
        MailingVariant.objects.create(mailing=mailing, label="B", subject="Subject B")

        wait_for(
            lambda: _status(mailing) == Mailing.Status.WAITING_FOR_WINNER,
            timeout=120,
            message=workers[-1].log,
        )
        # The test's slice, a fifth of the audience, and no more.
        assert sum(esp.counts().values()) == sent_count(mailing) < 3_000
        # The test's wait is over: both sweeps find the test due for a decision.
        Mailing.objects.filter(pk=mailing.pk).update(
            started_at=timezone.now() - timedelta(hours=mailing.ab_wait_hours, minutes=1)
        )
        wait_until_finished(mailing, workers, timeout=180)
        assert mailing.status == Mailing.Status.SENT
        assert_each_received_exactly_once(esp, emails)
    assert_the_ledger_says_each_was_sent(mailing, emails)
    actions = list(mailing.audit_entries.values_list("action", flat=True))
    assert actions.count(Action.SENT) == 1
    assert actions.count(Action.AB_DECIDED) == 1
    # Both schedulers did run the sweep.
    for worker in workers:
        assert "Sending due task mailings-sweep" in worker.log()


def _status(mailing: Mailing) -> str:
    mailing.refresh_from_db(fields=["status"])
    return mailing.status
