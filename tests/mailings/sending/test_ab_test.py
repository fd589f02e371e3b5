"""A/B tests through the services, in one process with Django's in-memory email backend."""

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from mailings.models import Delivery, Mailing, MailingAuditEntry, MailingVariant
from mailings.sending import MailingStateError, delivery_snapshot, mailing_send, mailing_send_batch
from mailings.sending.ab_assignment import ab_bucket, ab_key, variant_assignment
from mailings.sending.ab_test import (
    VariantFigures,
    mailing_ab_decide,
    mailing_ab_stop,
    mailing_ab_tests_decide_due,
    two_proportion_confidence,
)
from mailings.sending.control import mailing_snapshot_and_start
from supporters.models import Supporter
from tests.factories import MailingFactory, SignatureFactory

pytestmark = pytest.mark.django_db

AUDIENCE = 400


@pytest.fixture
def audience():
    Supporter.objects.bulk_create(
        [Supporter(email=f"reader{n}@example.org", first_name=f"R{n}") for n in range(AUDIENCE)]
    )


def ab_mailing(share=20, **fields) -> Mailing:
    mailing = MailingFactory(
        subject="Subject A", ab_test_share=share, ab_min_deliveries=10, **fields
    )
    MailingVariant.objects.create(mailing=mailing, label="B", subject="Subject B")
    return mailing


def send_everything(mailing: Mailing) -> None:
    """Run the snapshot (if any is due) and every batch, as the workers would."""
    mailing_snapshot_and_start(mailing_id=mailing.pk)
    while mailing_send_batch(mailing_id=mailing.pk, worker="test").more:
        pass
    mailing.refresh_from_db()


def subjects_by_recipient() -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}
    for message in mail.outbox:
        sent.setdefault(message.to[0], []).append(message.subject)
    return sent


def test_python_and_the_database_agree_on_each_supporters_bucket(audience):
    mailing = ab_mailing()
    key = ab_key(mailing.pk)
    ids = list(Supporter.objects.values_list("pk", flat=True))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, (('x' || substr(md5(%s || id::text), 1, 7))::bit(28)::int) "
                "FROM supporters_supporter",
                [key],
            )
            in_sql = dict(cursor.fetchall())
        assert in_sql == {pk: ab_bucket(key, pk) for pk in ids}
    # Another mailing draws another slice.
    other = ab_key(mailing.pk + 1)
    assert [ab_bucket(key, pk) for pk in ids] != [ab_bucket(other, pk) for pk in ids]


def test_the_snapshot_freezes_the_test_slice_split_evenly_and_the_same_each_time(audience):
    mailing = ab_mailing(share=20)
    mailing_send(mailing=mailing)
    delivery_snapshot(mailing_id=mailing.pk)
    first = dict(Delivery.objects.filter(mailing=mailing).values_list("supporter_id", "variant"))
    # A retried snapshot (a redelivered task) adds nobody and moves nobody.
    Delivery.objects.filter(mailing=mailing).delete()
    delivery_snapshot(mailing_id=mailing.pk)
    again = dict(Delivery.objects.filter(mailing=mailing).values_list("supporter_id", "variant"))
    assert first == again
    assignment = variant_assignment(mailing)
    assert first == {
        pk: assignment.variant_of(pk)
        for pk in Supporter.objects.values_list("pk", flat=True)
        if assignment.variant_of(pk) is not None
    }
    counts = Counter(first.values())
    assert set(counts) == {"A", "B"}
    # 20% of 400, give or take chance; each variant about half of it.
    assert 50 <= len(first) <= 110
    assert abs(counts["A"] - counts["B"]) <= 0.4 * len(first)
    mailing.refresh_from_db()
    assert mailing.ab_status == Mailing.ABStatus.TESTING


def test_the_slice_is_sent_then_the_mailing_waits_and_the_winner_goes_to_everyone_else(audience):
    mailing = ab_mailing()
    mailing_send(mailing=mailing)
    send_everything(mailing)
    assert mailing.status == Mailing.Status.WAITING_FOR_WINNER
    slice_ = dict(
        Delivery.objects.filter(mailing=mailing).values_list("supporter__email", "variant")
    )
    sent = subjects_by_recipient()
    assert {email: [f"Subject {variant}"] for email, variant in slice_.items()} == sent
    # Signatures from B's readers, credited to the mailing: B wins.
    b_readers = Delivery.objects.filter(mailing=mailing, variant="B").select_related("supporter")
    for delivery in list(b_readers)[:15]:
        SignatureFactory(petition=mailing.petition, supporter=delivery.supporter, mailing=mailing)

    decision = mailing_ab_decide(mailing_id=mailing.pk)

    assert (decision.winner, decision.significant) == ("B", True)
    assert decision.confidence > 0.99
    send_everything(mailing)
    assert mailing.status == Mailing.Status.SENT
    assert mailing.ab_winner == "B"
    everyone = subjects_by_recipient()
    assert set(everyone) == set(Supporter.objects.values_list("email", flat=True))
    assert all(len(subjects) == 1 for subjects in everyone.values()), "somebody got two"
    for email, subjects in everyone.items():
        assert subjects == [f"Subject {slice_.get(email, 'B')}"]
    assert Counter(Delivery.objects.filter(mailing=mailing).values_list("variant", flat=True)) == {
        "A": Counter(slice_.values())["A"],
        "B": AUDIENCE - Counter(slice_.values())["A"],
    }
    entry = MailingAuditEntry.objects.get(action=MailingAuditEntry.Action.AB_DECIDED)
    assert "B won at" in entry.detail and "B 15/" in entry.detail


def test_without_a_significant_winner_the_control_goes_to_the_rest(audience):
    mailing = ab_mailing()
    mailing_send(mailing=mailing)
    send_everything(mailing)

    decision = mailing_ab_decide(mailing_id=mailing.pk)

    assert (decision.winner, decision.significant) == ("A", False)
    send_everything(mailing)
    rest = Delivery.objects.filter(mailing=mailing).exclude(
        supporter__email__in=[e for e, s in subjects_by_recipient().items() if s != ["Subject A"]]
    )
    assert rest.exclude(variant="A").count() == 0
    assert mailing.status == Mailing.Status.SENT
    assert Delivery.objects.filter(mailing=mailing).count() == AUDIENCE


def test_a_test_that_waits_for_a_person_sends_nothing_until_one_picks(audience):
    mailing = ab_mailing(ab_without_winner=Mailing.ABWithoutWinner.WAIT)
    mailing_send(mailing=mailing)
    send_everything(mailing)
    slice_size = len(mail.outbox)

    decision = mailing_ab_decide(mailing_id=mailing.pk)

    assert decision.winner is None
    mailing.refresh_from_db()
    assert (mailing.status, mailing.ab_status) == (
        Mailing.Status.WAITING_FOR_WINNER,
        Mailing.ABStatus.AWAITING_PICK,
    )
    assert len(mail.outbox) == slice_size
    mailing_ab_decide(mailing_id=mailing.pk, winner="B")
    send_everything(mailing)
    assert len(mail.outbox) == AUDIENCE


def test_a_winner_picked_twice_or_after_the_rest_went_out_is_refused(audience):
    mailing = ab_mailing()
    mailing_send(mailing=mailing)
    send_everything(mailing)
    mailing_ab_decide(mailing_id=mailing.pk, winner="B")
    with pytest.raises(MailingStateError, match="decided already: B went to the rest"):
        mailing_ab_decide(mailing_id=mailing.pk, winner="A")
    send_everything(mailing)
    with pytest.raises(MailingStateError, match="decided already"):
        mailing_ab_decide(mailing_id=mailing.pk)
    other = ab_mailing()
    with pytest.raises(MailingStateError, match="is a draft"):
        mailing_ab_decide(mailing_id=other.pk, winner="B")
    mailing_send(mailing=other)
    with pytest.raises(MailingStateError, match="has not started"):
        mailing_ab_decide(mailing_id=other.pk, winner="B")
    delivery_snapshot(mailing_id=other.pk)
    with pytest.raises(MailingStateError, match="has no variant C: it tests A, B"):
        mailing_ab_decide(mailing_id=other.pk, winner="C")
    assert Delivery.objects.filter(mailing=mailing).count() == AUDIENCE


def test_a_mailing_without_a_test_cannot_be_decided():
    mailing = MailingFactory()
    with pytest.raises(MailingStateError, match="has no A/B test"):
        mailing_ab_decide(mailing_id=mailing.pk)


def test_stopping_the_test_leaves_the_rest_unsent(audience):
    mailing = ab_mailing()
    mailing_send(mailing=mailing)
    send_everything(mailing)
    slice_size = len(mail.outbox)

    assert mailing_ab_stop(mailing_id=mailing.pk)
    assert not mailing_ab_stop(mailing_id=mailing.pk)

    mailing.refresh_from_db()
    assert (mailing.status, mailing.ab_status) == (
        Mailing.Status.CANCELLED,
        Mailing.ABStatus.STOPPED,
    )
    with pytest.raises(MailingStateError, match="was stopped"):
        mailing_ab_decide(mailing_id=mailing.pk, winner="B")
    assert Delivery.objects.filter(mailing=mailing).count() == slice_size


def test_complaints_in_the_test_hold_the_winner_back_and_say_why(audience, settings):
    settings.RALLY_BREAKER_COMPLAINT_RATE = 0.01
    mailing = ab_mailing()
    mailing_send(mailing=mailing)
    send_everything(mailing)
    complained = Delivery.objects.filter(mailing=mailing)[:3]
    Delivery.objects.filter(pk__in=[d.pk for d in complained]).update(
        esp_status=Delivery.EspStatus.COMPLAINED
    )

    decision = mailing_ab_decide(mailing_id=mailing.pk, winner="B")

    assert "3 complaints" in decision.held_because
    mailing.refresh_from_db()
    assert mailing.ab_status == Mailing.ABStatus.HELD
    assert "was not sent to the rest" in mailing.status_reason
    assert Delivery.objects.filter(mailing=mailing).count() < AUDIENCE
    assert MailingAuditEntry.objects.filter(action=MailingAuditEntry.Action.AB_HELD).exists()


def test_the_sweep_decides_a_test_once_its_wait_is_over(audience):
    mailing = ab_mailing(ab_wait_hours=2)
    mailing_send(mailing=mailing)
    send_everything(mailing)
    assert mailing_ab_tests_decide_due() == []
    Mailing.objects.filter(pk=mailing.pk).update(
        started_at=mailing.started_at - timedelta(hours=2, seconds=1)
    )
    assert mailing_ab_tests_decide_due() == [mailing.pk]
    mailing.refresh_from_db()
    assert (mailing.ab_status, mailing.ab_winner) == (Mailing.ABStatus.DECIDED, "A")


def test_the_two_proportion_test_is_sure_only_of_clear_differences():
    def variant(label, sent, successes):
        return VariantFigures(label, sent, successes, complaints=0, unsubscribes=0)

    assert two_proportion_confidence(variant("B", 1000, 60), variant("A", 1000, 30)) > 0.999
    assert 0.5 < two_proportion_confidence(variant("B", 100, 6), variant("A", 100, 4)) < 0.8
    assert two_proportion_confidence(variant("B", 100, 5), variant("A", 100, 5)) == 0.5
    assert two_proportion_confidence(variant("B", 0, 0), variant("A", 100, 5)) == 0.0


def test_unsubscribes_through_the_tests_messages_hold_the_winner_back(audience, settings, client):
    settings.RALLY_BREAKER_UNSUBSCRIBE_RATE = 0.02
    mailing = ab_mailing()
    mailing_send(mailing=mailing)
    send_everything(mailing)
    for message in mail.outbox[:5]:
        # The one-click POST that the List-Unsubscribe header points at (RFC 8058).
        url = message.extra_headers["List-Unsubscribe"].split(">")[0].lstrip("<")
        assert client.post(url.removeprefix(settings.SITE_URL)).status_code == 200

    decision = mailing_ab_decide(mailing_id=mailing.pk, winner="B")

    assert "5 unsubscribes from" in decision.held_because
    mailing.refresh_from_db()
    assert mailing.ab_status == Mailing.ABStatus.HELD
    assert "unsubscribes" in mailing.status_reason
