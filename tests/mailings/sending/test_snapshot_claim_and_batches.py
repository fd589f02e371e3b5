"""The send queue's services, in one process with Django's in-memory email backend."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from mailings.sending import (
    MailingStateError,
    delivery_claim_batch,
    delivery_snapshot,
    mailing_finish_if_done,
    mailing_send,
    mailing_send_batch,
    mailing_sweep,
)
from supporters.models import Supporter
from tests.factories import MailingFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sending_mailing(django_capture_on_commit_callbacks):
    for number in range(5):
        SupporterFactory(email=f"s{number}@example.org", first_name=f"Name{number}")
    mailing = MailingFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mailing_send(mailing=mailing)
    # The snapshot task is queued only once the transaction commits.
    assert len(callbacks) == 1
    return mailing


def test_send_is_refused_unless_draft_or_scheduled(sending_mailing):
    with pytest.raises(MailingStateError, match="only a draft or scheduled"):
        mailing_send(mailing=sending_mailing)


def test_snapshot_freezes_the_audience_once(sending_mailing):
    SignatureFactory(petition=sending_mailing.petition, supporter=SupporterFactory())
    assert delivery_snapshot(mailing_id=sending_mailing.pk) == 6
    assert delivery_snapshot(mailing_id=sending_mailing.pk) == 6
    assert Delivery.objects.count() == 6
    sending_mailing.refresh_from_db()
    assert sending_mailing.audience_snapshot_at is not None


def test_snapshot_in_slices_covers_everyone_and_sending_can_start_after_the_first(
    sending_mailing, monkeypatch
):
    from mailings.sending import snapshot

    monkeypatch.setattr(snapshot, "FIRST_SLICE_SIZE", 2)
    monkeypatch.setattr(snapshot, "SLICE_IDS", 2)
    for number in range(5, 12):
        SupporterFactory(email=f"s{number}@example.org")
    first_supporter = Supporter.objects.order_by("pk").first().pk
    seen_at_first_slice = []

    def on_first_slice():
        seen_at_first_slice.append(sorted(Delivery.objects.values_list("supporter_id", flat=True)))
        sending_mailing.refresh_from_db()
        assert sending_mailing.audience_snapshot_at is None  # still under way

    assert delivery_snapshot(mailing_id=sending_mailing.pk, on_first_slice=on_first_slice) == 12
    assert seen_at_first_slice == [[first_supporter, first_supporter + 1]]
    assert Delivery.objects.filter(mailing=sending_mailing).count() == 12


def test_the_first_slice_is_the_audience_first_members_however_far_into_the_table(
    monkeypatch, django_capture_on_commit_callbacks
):
    from mailings.sending import snapshot

    monkeypatch.setattr(snapshot, "FIRST_SLICE_SIZE", 2)
    for number in range(30):  # not in the audience: they left
        SupporterFactory(email=f"gone{number}@example.org", status="unsubscribed")
    audience = [SupporterFactory(email=f"in{number}@example.org") for number in range(3)]
    mailing = MailingFactory()
    with django_capture_on_commit_callbacks(execute=False):
        mailing_send(mailing=mailing)
    seen = []
    delivery_snapshot(
        mailing_id=mailing.pk,
        on_first_slice=lambda: seen.append(
            set(Delivery.objects.values_list("supporter", flat=True))
        ),
    )
    assert seen == [{audience[0].pk, audience[1].pk}]
    assert Delivery.objects.count() == 3


def test_a_batch_that_catches_up_with_the_snapshot_waits_for_it(sending_mailing):
    outcome = mailing_send_batch(mailing_id=sending_mailing.pk, worker="w")
    assert outcome.wait_seconds and not outcome.more
    sending_mailing.refresh_from_db()
    assert sending_mailing.status == Mailing.Status.SENDING
    delivery_snapshot(mailing_id=sending_mailing.pk)
    assert mailing_send_batch(mailing_id=sending_mailing.pk, worker="w").wait_seconds is None


def test_claims_never_overlap_and_the_batch_is_recorded(sending_mailing, settings):
    delivery_snapshot(mailing_id=sending_mailing.pk)
    first = delivery_claim_batch(mailing_id=sending_mailing.pk, worker="a", size=3)
    second = delivery_claim_batch(mailing_id=sending_mailing.pk, worker="b", size=3)
    assert len(first) == 3 and len(second) == 2
    assert not {c.delivery_id for c in first} & {c.delivery_id for c in second}
    assert delivery_claim_batch(mailing_id=sending_mailing.pk, worker="c", size=3) == []


def test_batches_send_each_supporter_once_then_the_mailing_is_sent(sending_mailing, settings):
    settings.RALLY_SEND_BATCH_SIZE = 2
    delivery_snapshot(mailing_id=sending_mailing.pk)
    while mailing_send_batch(mailing_id=sending_mailing.pk, worker="w").more:
        pass
    assert sorted(m.to[0] for m in mail.outbox) == [f"s{n}@example.org" for n in range(5)]
    for message in mail.outbox:
        number = message.to[0][1]
        assert f"Dear Name{number}," in message.body
    assert mailing_delivery_counts(sending_mailing)["sent"] == 5
    sending_mailing.refresh_from_db()
    assert sending_mailing.status == Mailing.Status.SENT


def test_supporter_who_unsubscribes_after_the_snapshot_is_skipped(sending_mailing):
    delivery_snapshot(mailing_id=sending_mailing.pk)
    Supporter.objects.filter(email="s0@example.org").update(status=Supporter.Status.UNSUBSCRIBED)
    while mailing_send_batch(mailing_id=sending_mailing.pk, worker="w").more:
        pass
    assert "s0@example.org" not in {m.to[0] for m in mail.outbox}
    assert Delivery.objects.get(supporter__email="s0@example.org").status == Delivery.Status.SKIPPED


def test_a_paused_mailing_sends_nothing(sending_mailing):
    delivery_snapshot(mailing_id=sending_mailing.pk)
    Mailing.objects.filter(pk=sending_mailing.pk).update(status=Mailing.Status.PAUSED)
    assert not mailing_send_batch(mailing_id=sending_mailing.pk, worker="w").more
    assert mail.outbox == []


def test_sweep_marks_expired_claims_unknown_and_never_resends_them(sending_mailing):
    delivery_snapshot(mailing_id=sending_mailing.pk)
    claimed = delivery_claim_batch(mailing_id=sending_mailing.pk, worker="dead", size=2)
    Delivery.objects.filter(pk__in=[c.delivery_id for c in claimed]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    mailing_sweep()
    counts = mailing_delivery_counts(sending_mailing)
    assert counts["unknown"] == 2 and counts["pending"] == 3
    while mailing_send_batch(mailing_id=sending_mailing.pk, worker="w").more:
        pass
    assert len(mail.outbox) == 3
    assert mailing_finish_if_done(mailing_id=sending_mailing.pk) is False  # already SENT
    sending_mailing.refresh_from_db()
    assert sending_mailing.status == Mailing.Status.SENT


def test_an_unexpected_error_mid_batch_hands_unsent_rows_back(sending_mailing, monkeypatch):
    from mailings.sending import batches

    delivery_snapshot(mailing_id=sending_mailing.pk)
    real_build = batches.build_message
    built = []

    def build_then_break(**kwargs):
        built.append(kwargs["delivery_id"])
        if len(built) == 3:
            raise RuntimeError("renderer bug")
        return real_build(**kwargs)

    monkeypatch.setattr(batches, "build_message", build_then_break)
    with pytest.raises(RuntimeError, match="renderer bug"):
        mailing_send_batch(mailing_id=sending_mailing.pk, worker="w")
    counts = mailing_delivery_counts(sending_mailing)
    assert (counts["sent"], counts["pending"], counts["claimed"]) == (2, 3, 0)
    assert len(mail.outbox) == 2
