"""The database fails the workers' queries mid-send, wherever they are: claiming a batch,
recording one, sweeping. Each database fails in its own way, so each has its own test:

- PostgreSQL: every session the workers hold is terminated (`pg_terminate_backend`, what a
  restart, a failover or an idle-session killer does), each time another 500 were sent.
- SQLite has no sessions to kill. Its way to fail a query is a write lock held past the busy
  timeout (30 s, config/settings/base.py), as a long write elsewhere would: "database is
  locked". The test holds it until a worker's write has failed on it.

Each test is deselected on the other database (tests/reliability/conftest.py); CI runs both.
"""

import sqlite3

import pytest
from django.db import connection

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.sending import mailing_send
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

AUDIENCE = 10_000
# A short stall: chains whose task died on a failed query are queued again within seconds. A
# lease of a minute outlasts SQLite's busy timeout, and a batch left claimed shows as UNKNOWN
# within the test's time.
WORKER_SETTINGS = {
    "RALLY_SEND_BATCH_SIZE": 100,
    "RALLY_SWEEP_SECONDS": 1,
    "RALLY_SEND_STALL_SECONDS": 2,
    "RALLY_SEND_LEASE_SECONDS": 60,
}


@pytest.mark.database("postgresql")
def test_postgresql_sessions_terminated_again_and_again_lose_nobody_and_send_nobody_twice(
    celery_worker_factory,
):
    emails = make_audience(AUDIENCE)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        worker = celery_worker_factory(**postmark_env(esp, **WORKER_SETTINGS), beat=True)
        mailing_send(mailing=mailing)
        rounds = done = 0
        while done < AUDIENCE - 1_000:
            done = wait_for(
                lambda done=done: _done_past(mailing, done + 500),
                timeout=120,
                message=worker.log,
            )
            if terminate_other_sessions():
                rounds += 1
        assert rounds >= 10

        wait_until_finished(mailing, [worker], timeout=180)
        assert mailing.status == Mailing.Status.SENT, mailing.status_reason
        assert_each_received_exactly_once(esp, emails)
    assert_the_ledger_says_each_was_sent(mailing, emails)
    # Some sessions were lost while a batch was out at the ESP, and its record survived that.
    assert "Recording a batch failed" in worker.log()


@pytest.mark.database("sqlite")
def test_sqlite_locked_past_its_busy_timeout_mid_send_loses_nobody_and_sends_nobody_twice(
    celery_worker_factory,
):
    emails = make_audience(AUDIENCE)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        # One chain and no beat: while the lock is held, the batch out at the ESP is the only
        # thing that will write, so its record is what waits out the busy timeout and fails.
        env = postmark_env(esp, **WORKER_SETTINGS, RALLY_SEND_PARALLELISM=1)
        worker = celery_worker_factory(**env)
        mailing_send(mailing=mailing)
        wait_for(lambda: sent_count(mailing) >= 3_000, timeout=120, message=worker.log)
        # Half a second at the ESP per batch: time to take the lock while one is out.
        esp.configure(latency_ms=500)
        # Its own connection, outside Django: the lock of another program writing to the file.
        locker = sqlite3.connect(connection.settings_dict["NAME"], timeout=60, isolation_level=None)
        try:
            wait_for(
                lambda: _lock_while_a_batch_is_out(locker, mailing),
                timeout=60,
                message=worker.log,
            )
            wait_for(lambda: "database is locked" in worker.log(), timeout=120, message=worker.log)
        finally:
            if locker.in_transaction:
                locker.execute("ROLLBACK")
            locker.close()
        esp.configure(latency_ms=0)
        assert sent_count(mailing) < AUDIENCE
        # From now on beat's sweep runs too: it would turn a batch left claimed UNKNOWN.
        sweeping = celery_worker_factory(**env, beat=True)

        wait_until_finished(mailing, [worker, sweeping], timeout=180)
        assert mailing.status == Mailing.Status.SENT, mailing.status_reason
        assert_each_received_exactly_once(esp, emails)
    assert_the_ledger_says_each_was_sent(mailing, emails)
    # The batch that was out when the lock came was recorded once the lock was gone.
    assert "Recording a batch failed (database is locked)" in worker.log()


def _lock_while_a_batch_is_out(locker: sqlite3.Connection, mailing: Mailing) -> bool:
    """Take the database's write lock if a batch is claimed now, and keep it; else let go.

    A batch still claimed under the lock has its record to write, which cannot happen
    before the lock is released.
    """
    locker.execute("BEGIN EXCLUSIVE")
    (claimed,) = locker.execute(
        f"SELECT count(*) FROM {Delivery._meta.db_table} WHERE mailing_id = ? AND status = ?",  # noqa: S608
        [mailing.pk, Delivery.Status.CLAIMED],
    ).fetchone()
    if not claimed:
        locker.execute("ROLLBACK")
    return bool(claimed)


def terminate_other_sessions() -> int:
    """Terminate every session on the test database but this process' own; return how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _done_past(mailing: Mailing, count: int) -> int:
    """Return how many deliveries are done once more than `count` are, or all are; else 0."""
    done = (
        Delivery.objects.filter(mailing=mailing)
        .exclude(status__in=[Delivery.Status.PENDING, Delivery.Status.CLAIMED])
        .count()
    )
    return done if done >= count or done == AUDIENCE else 0
