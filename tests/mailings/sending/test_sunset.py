"""The sunset flow: a re-permission mailing, a grace period, then the silent are suppressed.

End to end with real parts: a Celery worker sends the mailing through anymail's Postmark
backend to a fake Postmark and runs the beat task; the recipients open, click and sign over
HTTP; time passes by moving the mailing's finished_at back, never by sleeping.
"""

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from espfakes import FakePostmark
from mailings.content.tracked_links import make_click_token, make_open_token
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.sending import mailing_send
from mailings.sending.sunset import (
    SUNSET_REASON,
    mailing_apply_sunset,
    mailing_sunset_summary,
    mailings_apply_due_sunsets,
)
from mailings.sending.tasks import mailing_sunset_task
from supporters.engagement import tier_of
from supporters.models import Engagement, SegmentCondition, Supporter
from supporters.services import supporter_unsubscribe
from supporters.signals import supporters_sunset
from tests.factories import MailingFactory, PetitionFactory, SupporterFactory
from tests.processes import wait_for
from tests.sending_helpers import postmark_env, wait_until_finished

Status = Supporter.Status
FORM = {"first_name": "Ann", "last_name": "Lee", "country": "GB"}


def dormant(email: str, *, mailings: int = 12) -> Supporter:
    """A supporter silent for over a year, sent `mailings` unanswered (the dormant tier)."""
    supporter = SupporterFactory(email=email)
    long_ago = timezone.now() - timedelta(days=400)
    Supporter.objects.filter(pk=supporter.pk).update(created_at=long_ago - timedelta(days=365))
    Engagement.objects.create(
        supporter=supporter,
        last_mailed_at=long_ago,
        last_engaged_at=long_ago,
        mailings_since_engaged=mailings,
    )
    supporter.refresh_from_db()
    assert tier_of(supporter.engagement, joined_at=supporter.created_at) == "dormant"
    return supporter


def repermission_mailing(petition) -> Mailing:
    return MailingFactory(
        name="Do you still want to hear from us?",
        purpose=Mailing.Purpose.REPERMISSION,
        petition=petition,
        campaign=petition.campaign,
    )


def move_past_the_grace(mailing: Mailing, settings) -> None:
    Mailing.objects.filter(pk=mailing.pk).update(
        finished_at=F("finished_at") - timedelta(days=settings.RALLY_SUNSET_GRACE_DAYS, hours=1)
    )


def statuses() -> dict[str, tuple[str, str]]:
    return {
        email.split("@")[0]: (status, reason)
        for email, status, reason in Supporter.objects.values_list(
            "email", "status", "suppression_reason"
        )
    }


@pytest.mark.django_db(transaction=True)
def test_the_silent_recipients_are_sunset_once_and_a_fresh_signature_brings_one_back(
    celery_worker_factory, client, admin_client, settings
):
    petition = PetitionFactory(slug="still-with-us")
    for name in ("opener", "clicker", "signer", "silent", "quiet", "leaver"):
        dormant(f"{name}@example.org")
    mailing = repermission_mailing(petition)

    with FakePostmark(record_bodies=False) as esp:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=2))
        mailing_send(mailing=mailing)
        wait_until_finished(mailing, [worker])
        mailing.refresh_from_db()
        assert mailing.status == Mailing.Status.SENT
        sent = Delivery.objects.filter(mailing=mailing, status=Delivery.Status.SENT)
        assert sent.count() == 6
        assert set(Engagement.objects.values_list("mailings_since_engaged", flat=True)) == {13}

        # Three answer, each their own way; one leaves; two say nothing.
        by_email = {row.supporter.email: row for row in sent.select_related("supporter")}
        opener, clicker = by_email["opener@example.org"], by_email["clicker@example.org"]
        pixel = make_open_token(mailing_id=mailing.pk, supporter_id=opener.supporter_id)
        assert client.get(f"/o/{pixel}.gif").status_code == 200
        link = make_click_token(
            mailing_id=mailing.pk, supporter_id=clicker.supporter_id, link_index=0
        )
        assert client.get(f"/r/{link}/").status_code == 302
        signed = client.post(
            f"/petitions/{petition.slug}/", {**FORM, "email": "signer@example.org"}
        )
        assert signed.status_code == 302
        supporter_unsubscribe(supporter_id=by_email["leaver@example.org"].supporter_id)

        # Within the grace, nothing happens.
        assert mailings_apply_due_sunsets() == {}
        summary = mailing_sunset_summary(mailing)
        assert summary.applied_at is None
        assert summary.due_at == mailing.finished_at + timedelta(days=14)

        move_past_the_grace(mailing, settings)
        mailing_sunset_task.delay()  # beat's task, run by the worker
        wait_for(
            lambda: Mailing.objects.get(pk=mailing.pk).sunset_applied_at,
            timeout=60,
            message=worker.log,
        )

    assert statuses() == {
        "opener": (Status.SUBSCRIBED, ""),
        "clicker": (Status.SUBSCRIBED, ""),
        "signer": (Status.SUBSCRIBED, ""),
        "silent": (Status.SUNSET, SUNSET_REASON),
        "quiet": (Status.SUNSET, SUNSET_REASON),
        "leaver": (Status.UNSUBSCRIBED, ""),
    }
    mailing.refresh_from_db()
    assert Supporter.objects.get(email="silent@example.org").suppressed_at == (
        mailing.sunset_applied_at
    )
    entry = MailingAuditEntry.objects.get(mailing=mailing, action=MailingAuditEntry.Action.SUNSET)
    assert entry.recipient_count == 2 and entry.actor is None
    report = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/report/").content.decode()
    assert "<strong>2</strong> silent recipients were suppressed (sunset)" in report

    # Once: a second run, by beat or by hand, suppresses nobody more.
    dormant_since = Supporter.objects.get(email="opener@example.org")
    Engagement.objects.filter(supporter=dormant_since).update(
        last_engaged_at=timezone.now() - timedelta(days=400)
    )
    assert mailing_apply_sunset(mailing_id=mailing.pk) is None
    assert mailings_apply_due_sunsets() == {}
    assert Supporter.objects.get(email="opener@example.org").status == Status.SUBSCRIBED
    assert MailingAuditEntry.objects.filter(action=MailingAuditEntry.Action.SUNSET).count() == 1

    # A fresh signature with consent brings one back; without consent, nobody is resubscribed.
    for email, consent in (("silent@example.org", "on"), ("quiet@example.org", None)):
        data = {**FORM, "email": email, **({"consent": consent} if consent else {})}
        assert client.post(f"/petitions/{petition.slug}/", data).status_code == 302
    back = Supporter.objects.select_related("engagement").get(email="silent@example.org")
    assert back.status == Status.SUBSCRIBED
    assert tier_of(back.engagement, joined_at=back.created_at) == SegmentCondition.Tier.ACTIVE
    assert Supporter.objects.get(email="quiet@example.org").status == Status.SUNSET


@pytest.mark.django_db
def test_only_a_sent_repermission_mailing_past_its_grace_is_ever_sunset(settings):
    petition = PetitionFactory()
    silent = dormant("silent@example.org")
    sent_at = timezone.now() - timedelta(days=settings.RALLY_SUNSET_GRACE_DAYS + 1)

    def mailing_sent_to_silent(**fields) -> Mailing:
        mailing = MailingFactory(petition=petition, campaign=petition.campaign, **fields)
        Delivery.objects.create(
            mailing=mailing, supporter=silent, status=Delivery.Status.SENT, sent_at=sent_at
        )
        return mailing

    appeal = mailing_sent_to_silent(status=Mailing.Status.SENT, finished_at=sent_at)
    sending = mailing_sent_to_silent(
        purpose=Mailing.Purpose.REPERMISSION, status=Mailing.Status.SENDING
    )
    recent = mailing_sent_to_silent(
        purpose=Mailing.Purpose.REPERMISSION,
        status=Mailing.Status.SENT,
        finished_at=timezone.now() - timedelta(days=settings.RALLY_SUNSET_GRACE_DAYS - 1),
    )
    for mailing in (appeal, sending, recent):
        assert mailing_apply_sunset(mailing_id=mailing.pk) is None
    assert mailing_sunset_summary(appeal) is None
    assert mailings_apply_due_sunsets() == {}
    silent.refresh_from_db()
    assert silent.status == Status.SUBSCRIBED

    due = mailing_sent_to_silent(
        purpose=Mailing.Purpose.REPERMISSION, status=Mailing.Status.SENT, finished_at=sent_at
    )
    # Engaged before their message was sent: that is not an answer to it.
    Engagement.objects.filter(supporter=silent).update(
        last_engaged_at=sent_at - timedelta(minutes=1)
    )
    bystander = dormant("not-a-recipient@example.org")
    received = []

    def announce(sender, **arguments):
        received.append(arguments)

    supporters_sunset.connect(announce)
    try:
        assert mailings_apply_due_sunsets() == {due.pk: 1}
    finally:
        supporters_sunset.disconnect(announce)
    assert [(args["supporter_ids"], args["mailing_id"]) for args in received] == [
        ([silent.pk], due.pk)
    ]
    silent.refresh_from_db()
    bystander.refresh_from_db()
    assert (silent.status, silent.suppression_reason) == (Status.SUNSET, SUNSET_REASON)
    assert bystander.status == Status.SUBSCRIBED
    summary = mailing_sunset_summary(Mailing.objects.get(pk=due.pk))
    assert summary.suppressed == 1 and summary.applied_at is not None


@pytest.mark.django_db
def test_a_sunset_supporter_still_takes_a_bounce_a_complaint_and_an_unsubscribe():
    from supporters.services import supporter_suppress

    for status in (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED):
        supporter = SupporterFactory(status=Status.SUNSET, suppression_reason=SUNSET_REASON)
        assert supporter_suppress(supporter_id=supporter.pk, status=status, reason="ESP said so")
        supporter.refresh_from_db()
        assert supporter.status == status
