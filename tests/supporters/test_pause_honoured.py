"""A pause is honoured wherever mail is chosen: audiences, their counts, snapshots and claims."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from espfakes import FakeSMTP
from mailings.models import Delivery, Mailing
from mailings.selectors import (
    AudienceConditions,
    audience_counts,
    audience_for,
    mailing_audience,
    mailing_audience_counts,
    mailing_audience_sample,
)
from mailings.sending import delivery_snapshot, mailing_send, mailing_send_batch, mailing_sweep
from mailings.sending.tasks import mailing_send_batch_task
from supporters.models import Supporter
from supporters.services import supporter_pause, supporter_pauses_end
from tests.factories import MailingFactory, SupporterFactory
from tests.processes import wait_for


@pytest.fixture
def paused_and_not():
    """Supporters with no pause, a pause still running, and one that ended yesterday."""
    now = timezone.now()
    return {
        "never": SupporterFactory(email="never@example.org"),
        "paused": SupporterFactory(
            email="paused@example.org", language="ru", paused_until=now + timedelta(days=30)
        ),
        "ended": SupporterFactory(email="ended@example.org", paused_until=now - timedelta(days=1)),
    }


@pytest.mark.django_db
def test_a_running_pause_leaves_a_supporter_out_of_audiences_and_counts(paused_and_not):
    supporter_pauses_end()  # as the sweep does
    mailing = MailingFactory()
    assert set(mailing_audience(mailing).values_list("email", flat=True)) == {
        "never@example.org",
        "ended@example.org",
    }
    counts = mailing_audience_counts(mailing)
    assert counts.count == 2
    assert counts.by_language == {"en": 2, "ru": 0}
    assert audience_counts(AudienceConditions(language="ru")).count == 0
    for _ in range(10):
        assert mailing_audience_sample(mailing).email != "paused@example.org"


@pytest.mark.django_db
def test_the_sweep_ends_pauses_that_are_over_and_only_those(paused_and_not):
    mailing_sweep()
    paused, ended = paused_and_not["paused"], paused_and_not["ended"]
    ended.refresh_from_db()
    assert ended.paused_until is None
    running = paused.paused_until
    paused.refresh_from_db()
    assert paused.paused_until == running
    assert supporter_pauses_end() == 0  # safe twice


@pytest.mark.django_db
def test_the_audience_count_can_be_read_from_the_mailable_index_alone():
    """A condition on paused_until the index cannot answer would read the whole table."""
    SupporterFactory()
    query = audience_for(AudienceConditions()).values_list("language").annotate(n=Count("*"))
    sql, params = query.order_by().query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Even on a tiny table, where the planner would rather read the table itself.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Index Only Scan using supporter_mailable_audience" in plan, plan
        else:
            # SQLite reads the same index (a scan of the index, not of the table).
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            assert "SCAN supporters_supporter USING INDEX supporter_mailable_audience" in plan, plan


@pytest.mark.django_db
def test_a_pause_through_the_service_takes_effect_at_once():
    supporter = SupporterFactory()
    assert audience_counts(AudienceConditions()).count == 1
    supporter_pause(supporter_id=supporter.pk, days=30)
    assert audience_counts(AudienceConditions()).count == 0


@pytest.mark.django_db
def test_a_snapshot_leaves_paused_supporters_out_and_takes_those_whose_pause_ended(
    paused_and_not, django_capture_on_commit_callbacks
):
    mailing = MailingFactory()
    with django_capture_on_commit_callbacks(execute=False):
        mailing_send(mailing=mailing)
    assert delivery_snapshot(mailing_id=mailing.pk) == 2
    assert set(
        Delivery.objects.filter(mailing=mailing).values_list("supporter__email", flat=True)
    ) == {"never@example.org", "ended@example.org"}


@pytest.mark.django_db
def test_a_supporter_who_pauses_after_the_snapshot_is_skipped_at_claim(
    django_capture_on_commit_callbacks,
):
    for number in range(4):
        SupporterFactory(email=f"s{number}@example.org")
    mailing = MailingFactory()
    with django_capture_on_commit_callbacks(execute=False):
        mailing_send(mailing=mailing)
    delivery_snapshot(mailing_id=mailing.pk)
    pausing = Supporter.objects.get(email="s1@example.org")
    supporter_pause(supporter_id=pausing.pk, days=90)
    while mailing_send_batch(mailing_id=mailing.pk, worker="w").more:
        pass
    assert sorted(m.to[0] for m in mail.outbox) == [
        "s0@example.org",
        "s2@example.org",
        "s3@example.org",
    ]
    delivery = Delivery.objects.get(mailing=mailing, supporter=pausing)
    assert delivery.status == Delivery.Status.SKIPPED


def test_a_real_worker_skips_a_supporter_paused_after_the_snapshot(
    celery_worker_factory, django_capture_on_commit_callbacks
):
    readers = [SupporterFactory(email=f"reader{n}@example.org") for n in range(12)]
    mailing = MailingFactory()
    with django_capture_on_commit_callbacks(execute=False):
        mailing_send(mailing=mailing)
    # Frozen here, so that the pause falls between the snapshot and the claim.
    delivery_snapshot(mailing_id=mailing.pk)
    paused = readers[5]
    supporter_pause(supporter_id=paused.pk, days=30)
    with FakeSMTP() as esp:
        worker = celery_worker_factory(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST=esp.host,
            EMAIL_PORT=str(esp.port),
            RALLY_SEND_BATCH_SIZE="4",
        )
        mailing_send_batch_task.delay(mailing.pk)

        def finished():
            mailing.refresh_from_db()
            return mailing.status == Mailing.Status.SENT

        wait_for(finished, timeout=60, message=lambda: f"not sent:\n{worker.log()[-3000:]}")
        assert esp.counts() == {r.email: 1 for r in readers if r != paused}
    assert Delivery.objects.get(mailing=mailing, supporter=paused).status == Delivery.Status.SKIPPED
