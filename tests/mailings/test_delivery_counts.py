"""The counters of a mailing's deliveries by status equal a count of its ledger after every path
that changes a delivery: the snapshot, claims, skips, outcomes, the sweep, the reconciler,
cancel, an A/B test stopped, erasure, deletions, raw SQL, and real workers sending at once.

Each check counts the ledger itself (ledger_delivery_counts) beside the counters the database
keeps (delivery_counts_of). The suite runs on PostgreSQL and on SQLite (DATABASE_URL).
"""

import threading
from datetime import timedelta

import pytest
from anymail.message import AnymailMessage
from django.core.mail import get_connection
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from espfakes import FakePostmark
from mailings.delivery_counts import (
    delivery_counts_of,
    delivery_counts_rebuild,
    ledger_delivery_counts,
)
from mailings.models import Delivery, DeliveryCount, Mailing
from mailings.selectors import mailing_delivery_counts, mailing_progress, mailing_skip_reasons
from mailings.sending import (
    delivery_snapshot,
    mailing_cancel,
    mailing_send,
    mailing_send_batch,
    mailing_sweep,
)
from mailings.sending.ab_test import mailing_ab_stop
from mailings.sending.batches import delivery_claim_batch
from mailings.sending.reconcile import delivery_reconcile_unknown
from privacy.services import supporter_erase
from supporters.models import Supporter
from tests.factories import MailingFactory, SupporterFactory
from tests.processes import wait_for
from tests.sending_helpers import make_audience, postmark_env, wait_until_finished

Status = Delivery.Status
SkipReason = Delivery.SkipReason


def assert_counters_match_ledger(mailing: Mailing) -> dict[tuple[str, str], int]:
    """Check the mailing's counters against its ledger, read in one snapshot; return them.

    One snapshot, so that workers writing meanwhile change both or neither (PostgreSQL's
    REPEATABLE READ; SQLite's transaction). Inside a test's own transaction nobody else writes.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        counters = delivery_counts_of(mailing.pk)
        ledger = ledger_delivery_counts(mailing.pk)
    assert counters == ledger
    return counters


@pytest.fixture
def sending(settings):
    """A sending mailing of 8 whose audience is frozen, sent in batches of 2 (locmem mail)."""
    settings.RALLY_SEND_BATCH_SIZE = 2
    for number in range(8):
        SupporterFactory(email=f"s{number}@example.org")
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    delivery_snapshot(mailing_id=mailing.pk)
    return mailing


@pytest.mark.django_db
def test_counters_follow_the_snapshot_claims_skips_outcomes_the_sweep_and_cancel(sending):
    assert assert_counters_match_ledger(sending) == {(Status.PENDING, ""): 8}

    mailing_send_batch(mailing_id=sending.pk, worker="w")
    assert assert_counters_match_ledger(sending) == {(Status.PENDING, ""): 6, (Status.SENT, ""): 2}

    # Unsubscribed after the snapshot: skipped when its batch comes (not mailable).
    next_two = Delivery.objects.filter(mailing=sending, status=Status.PENDING).order_by("pk")[:2]
    Supporter.objects.filter(deliveries__in=next_two[:1]).update(status="unsubscribed")
    mailing_send_batch(mailing_id=sending.pk, worker="w")
    assert_counters_match_ledger(sending)
    assert mailing_skip_reasons(sending) == {SkipReason.NOT_MAILABLE: 1}

    # A claim whose worker died: the sweep turns it UNKNOWN.
    claimed = delivery_claim_batch(mailing_id=sending.pk, worker="dead", size=2)
    assert_counters_match_ledger(sending)
    Delivery.objects.filter(pk__in=[row.delivery_id for row in claimed]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    mailing_sweep()
    assert assert_counters_match_ledger(sending)[Status.UNKNOWN, ""] == 2

    assert mailing_cancel(mailing_id=sending.pk)
    counters = assert_counters_match_ledger(sending)
    assert counters[Status.CANCELLED, ""] == 2
    progress = mailing_progress(sending)
    assert (progress.total, progress.sent, progress.skipped, progress.unknown) == (8, 3, 1, 2)
    assert (progress.cancelled, progress.pending) == (2, 0)


@pytest.mark.django_db
@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=1, RALLY_FREQUENCY_CAP_PER_WEEK=0)
def test_counters_follow_skips_over_the_frequency_cap_with_their_reason(sending):
    # Sent a moment ago: its claims made it beat, as the send queue's claim does.
    earlier = MailingFactory(status=Mailing.Status.SENT, heartbeat_at=timezone.now())
    for supporter in Supporter.objects.order_by("pk")[:3]:
        Delivery.objects.create(
            mailing=earlier, supporter=supporter, status=Status.SENT, sent_at=timezone.now()
        )
    while mailing_send_batch(mailing_id=sending.pk, worker="w").more:
        pass
    assert assert_counters_match_ledger(sending) == {
        (Status.SENT, ""): 5,
        (Status.SKIPPED, SkipReason.FREQUENCY_CAP_DAY): 3,
    }
    assert mailing_skip_reasons(sending) == {SkipReason.FREQUENCY_CAP_DAY: 3}
    assert_counters_match_ledger(earlier)


@pytest.mark.django_db
def test_an_error_mid_batch_hands_rows_back_and_the_counters_follow(sending, monkeypatch):
    from mailings.sending import batches

    real_build = batches.build_message
    built = []

    def build_then_break(**kwargs):
        built.append(kwargs["delivery_id"])
        if len(built) == 2:
            raise RuntimeError("renderer bug")
        return real_build(**kwargs)

    monkeypatch.setattr(batches, "build_message", build_then_break)
    with pytest.raises(RuntimeError, match="renderer bug"):
        mailing_send_batch(mailing_id=sending.pk, worker="w")
    assert assert_counters_match_ledger(sending) == {(Status.PENDING, ""): 7, (Status.SENT, ""): 1}


@pytest.mark.django_db
def test_stopping_an_ab_test_cancels_the_rest_and_the_counters_follow(sending):
    Mailing.objects.filter(pk=sending.pk).update(ab_status="testing")
    mailing_send_batch(mailing_id=sending.pk, worker="w")
    assert mailing_ab_stop(mailing_id=sending.pk)
    assert assert_counters_match_ledger(sending) == {
        (Status.SENT, ""): 2,
        (Status.CANCELLED, ""): 6,
    }


@pytest.mark.django_db
def test_erasure_deletions_and_raw_sql_are_counted_and_a_deleted_mailing_leaves_no_counters(
    sending,
):
    while mailing_send_batch(mailing_id=sending.pk, worker="w").more:
        pass
    first, second = Supporter.objects.order_by("pk")[:2]
    supporter_erase(supporter_id=first.pk)
    assert_counters_match_ledger(sending)
    second.delete()  # its deliveries go with it
    assert assert_counters_match_ledger(sending) == {(Status.SENT, ""): 7}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mailings_delivery SET status = 'failed' WHERE mailing_id = %s AND id IN "
            "(SELECT id FROM mailings_delivery WHERE mailing_id = %s ORDER BY id LIMIT 3)",
            [sending.pk, sending.pk],
        )
        cursor.execute(
            "INSERT INTO mailings_delivery (mailing_id, supporter_id, status, version_language,"
            " claimed_by, esp_message_id, error, created_at, updated_at) VALUES "
            "(%s, %s, 'pending', '', '', '', '', %s, %s)",
            [sending.pk, SupporterFactory().pk, timezone.now(), timezone.now()],
        )
    assert assert_counters_match_ledger(sending) == {
        (Status.SENT, ""): 4,
        (Status.FAILED, ""): 3,
        (Status.PENDING, ""): 1,
    }
    other = MailingFactory(status=Mailing.Status.SENT)
    Delivery.objects.create(mailing=other, supporter=first)
    sending.delete()
    assert not DeliveryCount.objects.filter(mailing_id=sending.pk).exists()
    assert assert_counters_match_ledger(other) == {(Status.PENDING, ""): 1}


@pytest.mark.django_db
def test_the_rebuild_mends_counters_that_were_lost(sending):
    mailing_send_batch(mailing_id=sending.pk, worker="w")
    DeliveryCount.objects.filter(mailing_id=sending.pk).delete()
    assert delivery_counts_of(sending.pk) == {}
    assert delivery_counts_rebuild(mailing_id=sending.pk) == {
        (Status.PENDING, ""): 6,
        (Status.SENT, ""): 2,
    }
    mailing_send_batch(mailing_id=sending.pk, worker="w")
    assert assert_counters_match_ledger(sending) == {(Status.PENDING, ""): 4, (Status.SENT, ""): 4}


@pytest.mark.django_db
def test_many_statements_leave_a_mailing_few_counter_rows(sending):
    deliveries = list(Delivery.objects.filter(mailing=sending).values_list("pk", flat=True))
    for round_ in range(300):
        status = Status.CLAIMED if round_ % 2 == 0 else Status.PENDING
        Delivery.objects.filter(pk=deliveries[round_ % len(deliveries)]).update(status=status)
    assert_counters_match_ledger(sending)
    rows = DeliveryCount.objects.filter(mailing_id=sending.pk).count()
    # SQLite keeps one row per key; PostgreSQL folds them after about 64 statements.
    assert rows <= (3 if connection.vendor == "sqlite" else 300 // 2)


@pytest.mark.django_db(transaction=True)
def test_two_sessions_changing_one_mailing_at_once_count_each_change_once():
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    supporters = Supporter.objects.bulk_create(
        Supporter(email=f"c{n}@example.org") for n in range(400)
    )
    Delivery.objects.bulk_create(Delivery(mailing=mailing, supporter=s) for s in supporters)
    ids = sorted(Delivery.objects.filter(mailing=mailing).values_list("pk", flat=True))
    halves = [ids[0::2], ids[1::2]]
    barrier = threading.Barrier(2)
    errors = []

    def work(own_ids):
        try:
            for start in range(0, len(own_ids), 10):
                chunk = own_ids[start : start + 10]
                barrier.wait(timeout=30)
                # Each transaction moves rows through two statements, as a claim and its
                # outcome would, holding its first change while the other session writes.
                with transaction.atomic():
                    Delivery.objects.filter(pk__in=chunk).update(status=Status.CLAIMED)
                    Delivery.objects.filter(pk__in=chunk[:5]).update(status=Status.SENT)
                    Delivery.objects.filter(pk__in=chunk[5:]).update(status=Status.PENDING)
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert assert_counters_match_ledger(mailing) == {
        (Status.SENT, ""): 200,
        (Status.PENDING, ""): 200,
    }


@pytest.mark.django_db
def test_what_the_reconciler_settles_is_counted_where_it_moved(settings):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    supporters = Supporter.objects.bulk_create(
        Supporter(email=f"r{n}@example.org", first_name="R") for n in range(4)
    )
    Delivery.objects.bulk_create(Delivery(mailing=mailing, supporter=s) for s in supporters)
    then = timezone.now() - timedelta(seconds=5)
    Delivery.objects.filter(mailing=mailing).update(
        status=Status.UNKNOWN, claimed_by="dead:1", lease_expires_at=then, updated_at=then
    )
    assert assert_counters_match_ledger(mailing) == {(Status.UNKNOWN, ""): 4}
    with FakePostmark() as esp:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {**settings.ANYMAIL, **esp.anymail_settings()}
        settings.RALLY_RECONCILE_DELAY_SECONDS = 0
        accepted = Delivery.objects.filter(mailing=mailing).select_related("supporter")[0]
        with get_connection() as esp_connection:
            AnymailMessage(
                "Appeal", "Sign", "campaigns@rally.example", [accepted.supporter.email],
                connection=esp_connection,
                metadata={"delivery_id": str(accepted.pk), "mailing_id": str(mailing.pk)},
            ).send()  # fmt: skip
        outcome = delivery_reconcile_unknown()
    assert (outcome.found_sent, outcome.put_back) == (1, 3)
    assert assert_counters_match_ledger(mailing) == {(Status.SENT, ""): 4}


def test_real_workers_sending_keep_the_counters_equal_to_the_ledger_at_every_moment(
    celery_worker_factory,
):
    emails = make_audience(1_500)
    mailing = MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        env = postmark_env(esp, RALLY_SEND_BATCH_SIZE=50)
        workers = [celery_worker_factory(**env), celery_worker_factory(**env)]
        mailing_send(mailing=mailing)
        moments = 0

        def finished() -> bool:
            nonlocal moments
            assert_counters_match_ledger(mailing)
            moments += 1
            mailing.refresh_from_db()
            return mailing.status == Mailing.Status.SENT

        wait_for(finished, timeout=180, message=lambda: workers[-1].log()[-3000:])
        wait_until_finished(mailing, workers)
    assert moments > 1
    assert assert_counters_match_ledger(mailing) == {(Status.SENT, ""): len(emails)}
    assert mailing_delivery_counts(mailing)["sent"] == len(emails)


@pytest.mark.django_db(transaction=True)
def test_a_repeatable_read_writer_never_fails_on_rows_folded_since_its_snapshot():
    """A fold in a REPEATABLE READ transaction could meet rows folded by a transaction committed
    after its snapshot, a serialization error; such a transaction adds its rows and folds none."""
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    supporters = Supporter.objects.bulk_create(
        Supporter(email=f"rr{n}@example.org") for n in range(20)
    )
    Delivery.objects.bulk_create(Delivery(mailing=mailing, supporter=s) for s in supporters)
    ids = sorted(Delivery.objects.filter(mailing=mailing).values_list("pk", flat=True))
    snapshot_taken, others_done = threading.Event(), threading.Event()
    errors = []

    def repeatable_read_writer():
        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        cursor.execute("SELECT COUNT(*) FROM mailings_deliverycount")
                    snapshot_taken.set()
                    others_done.wait(timeout=60)
                for round_ in range(200):  # enough statements to reach several folds
                    status = Status.CLAIMED if round_ % 2 == 0 else Status.PENDING
                    Delivery.objects.filter(pk=ids[0]).update(status=status)
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            snapshot_taken.set()
            connection.close()

    writer = threading.Thread(target=repeatable_read_writer)
    writer.start()
    snapshot_taken.wait(timeout=60)
    # Meanwhile, other transactions change the mailing and fold its rows, and commit.
    for round_ in range(200):
        status = Status.SENT if round_ % 2 == 0 else Status.PENDING
        Delivery.objects.filter(pk=ids[1]).update(status=status)
    others_done.set()
    writer.join(timeout=120)
    assert not errors
    assert assert_counters_match_ledger(mailing) == {(Status.PENDING, ""): 20}
