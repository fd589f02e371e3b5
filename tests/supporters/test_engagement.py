"""Engagement is kept by the workers as things happen, and the tiers are read from it.

Through the real ways in: a Celery worker sending to a fake Postmark, the tracking pixel and
the click redirect over HTTP, ESP events posted to anymail's own webhook URL, the sign form.
Both signing writers are held to the same engagement rows by tests/campaigns/
test_signing_parity.py.
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from espfakes import FakePostmark
from mailings.content.tracked_links import make_click_token, make_open_token
from mailings.feedback.processing import tracking_event_process
from mailings.models import Delivery, TrackingEvent
from mailings.sending import mailing_send
from supporters.engagement import tier_of, tier_q
from supporters.models import Engagement, SegmentCondition, Supporter
from tests.factories import MailingFactory, PetitionFactory, SupporterFactory
from tests.mailings.feedback.payloads import STAMP, basic_auth, metadata_for
from tests.sending_helpers import make_audience, postmark_env, wait_until_finished

Tier = SegmentCondition.Tier


def engagement_of(supporter: Supporter) -> Engagement:
    return Engagement.objects.get(supporter=supporter)


def quiet_for(supporter: Supporter, *, days: int, mailings: int) -> Engagement:
    """Give a supporter an engagement row: last engaged `days` ago, `mailings` unanswered.

    They joined a year before that, as a row's last engagement is never before the joining.
    """
    long_ago = timezone.now() - timedelta(days=days)
    Supporter.objects.filter(pk=supporter.pk).update(created_at=long_ago - timedelta(days=365))
    return Engagement.objects.create(
        supporter=supporter,
        last_mailed_at=long_ago,
        last_engaged_at=long_ago,
        mailings_since_engaged=mailings,
    )


# --- Sending -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_send_counts_each_mailing_once_for_each_recipient(celery_worker_factory):
    emails = make_audience(60)
    lapsing = Supporter.objects.get(email=emails[0])
    long_ago = quiet_for(lapsing, days=100, mailings=3).last_engaged_at
    SupporterFactory(email="left@example.org", status=Supporter.Status.UNSUBSCRIBED)
    first, second = MailingFactory(), MailingFactory()
    with FakePostmark(record_bodies=False) as esp:
        worker = celery_worker_factory(**postmark_env(esp, RALLY_SEND_BATCH_SIZE=25))
        mailing_send(mailing=first)
        wait_until_finished(first, [worker])
        rows = {row.supporter.email: row for row in Engagement.objects.select_related("supporter")}
        assert set(rows) == set(emails)  # nobody who was not sent the mailing
        sent_at = dict(
            Delivery.objects.filter(mailing=first).values_list("supporter__email", "sent_at")
        )
        for email in emails[1:]:
            row = rows[email]
            assert row.last_mailed_at == sent_at[email]
            assert row.mailings_since_engaged == 1
            # A new row starts from the supporter's joining, which counts as engaging.
            assert row.last_engaged_at == row.supporter.created_at
            assert (row.last_opened_at, row.last_clicked_at, row.last_acted_at) == (None,) * 3
        assert rows[emails[0]].mailings_since_engaged == 4
        assert rows[emails[0]].last_engaged_at == long_ago

        mailing_send(mailing=second)
        wait_until_finished(second, [worker])
    counts = dict(Engagement.objects.values_list("supporter__email", "mailings_since_engaged"))
    assert counts == {email: 5 if email == emails[0] else 2 for email in emails}


# --- Opens and clicks ----------------------------------------------------------------------


@pytest.fixture
def mailed():
    """A supporter sent a mailing, after months of silence and seven mailings unanswered."""
    supporter = SupporterFactory(email="reader@example.org")
    mailing = MailingFactory()
    delivery = Delivery.objects.create(
        mailing=mailing,
        supporter=supporter,
        status=Delivery.Status.SENT,
        sent_at=timezone.now(),
        esp_message_id="pm-reader-1",
    )
    quiet_for(supporter, days=150, mailings=7)
    return delivery


@pytest.mark.django_db
def test_the_open_pixel_records_an_open_and_resets_the_count(client, mailed):
    token = make_open_token(mailing_id=mailed.mailing_id, supporter_id=mailed.supporter_id)
    assert client.get(f"/o/{token}.gif").status_code == 200

    row = engagement_of(mailed.supporter)
    mailed.refresh_from_db()
    assert row.last_opened_at == mailed.opened_at
    assert row.last_engaged_at == row.last_opened_at
    assert row.mailings_since_engaged == 0
    assert row.last_clicked_at is None
    assert tier_of(row, joined_at=mailed.supporter.created_at) == Tier.ACTIVE


@pytest.mark.django_db
def test_a_click_through_the_redirect_records_a_click_every_time(client, mailed):
    token = make_click_token(
        mailing_id=mailed.mailing_id, supporter_id=mailed.supporter_id, link_index=0
    )
    assert client.get(f"/r/{token}/").status_code == 302
    first = engagement_of(mailed.supporter)
    assert first.last_clicked_at is not None
    assert first.last_engaged_at == first.last_clicked_at
    assert first.mailings_since_engaged == 0

    Engagement.objects.filter(pk=first.pk).update(mailings_since_engaged=2)
    assert client.get(f"/r/{token}/").status_code == 302
    again = engagement_of(mailed.supporter)
    assert again.last_clicked_at > first.last_clicked_at
    assert again.mailings_since_engaged == 0


def postmark_event(record_type: str, delivery: Delivery, *, serial: int, **fields) -> str:
    """Return a Postmark Open or Click webhook body, as Postmark documents it."""
    received_at = (STAMP + timedelta(seconds=serial)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "RecordType": record_type,
            "MessageStream": "broadcast",
            "MessageID": delivery.esp_message_id,
            "Metadata": metadata_for(delivery),
            "Recipient": delivery.supporter.email,
            "ReceivedAt": received_at,
            "Tag": "appeal",
            "Platform": "WebMail",
            "UserAgent": "Mozilla/5.0",
            **fields,
        }
    )


def post_and_process(client, body: str) -> None:
    response = client.generic(
        "POST",
        "/anymail/postmark/tracking/",
        body.encode(),
        content_type="application/json",
        **basic_auth(),
    )
    assert response.status_code == 200, response.content
    for pk in TrackingEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True):
        assert tracking_event_process(event_pk=pk) == TrackingEvent.Outcome.APPLIED


@pytest.mark.django_db
def test_esp_open_and_click_events_posted_to_anymail_record_engagement(client, mailed):
    post_and_process(client, postmark_event("Open", mailed, serial=1, FirstOpen=True))
    row = engagement_of(mailed.supporter)
    opened_at = STAMP + timedelta(seconds=1)
    assert (row.last_opened_at, row.last_engaged_at) == (opened_at, opened_at)
    assert row.mailings_since_engaged == 0

    Engagement.objects.filter(pk=row.pk).update(mailings_since_engaged=1)
    post_and_process(
        client,
        postmark_event("Click", mailed, serial=2, OriginalLink="https://rally.example/p/"),
    )
    row = engagement_of(mailed.supporter)
    clicked_at = STAMP + timedelta(seconds=2)
    assert (row.last_clicked_at, row.last_engaged_at) == (clicked_at, clicked_at)
    assert row.last_opened_at == opened_at
    assert row.mailings_since_engaged == 0


@pytest.mark.django_db
def test_an_esp_event_that_arrives_late_never_moves_engagement_back(client, mailed):
    later = STAMP + timedelta(days=3)
    Engagement.objects.filter(supporter=mailed.supporter).update(
        last_opened_at=later, last_engaged_at=later
    )
    post_and_process(client, postmark_event("Open", mailed, serial=1, FirstOpen=True))
    row = engagement_of(mailed.supporter)
    assert (row.last_opened_at, row.last_engaged_at) == (later, later)


# --- Signing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_through_the_form_records_the_signer_acting(client):
    petition = PetitionFactory(slug="free-them")
    dormant = SupporterFactory(email="dormant@example.org")
    quiet_for(dormant, days=400, mailings=15)
    form = {"first_name": "Ann", "last_name": "Lee", "country": "GB", "consent": "on"}
    for email in ("dormant@example.org", "new@example.org"):
        response = client.post(f"/petitions/{petition.slug}/", {**form, "email": email})
        assert response.status_code == 302

    for email in ("dormant@example.org", "new@example.org"):
        row = Engagement.objects.get(supporter__email=email)
        assert row.last_acted_at is not None
        assert row.last_engaged_at == row.last_acted_at
        assert row.mailings_since_engaged == 0
        assert tier_of(row, joined_at=row.supporter.created_at) == Tier.ACTIVE
    assert Engagement.objects.get(supporter__email="new@example.org").last_mailed_at is None


# --- Tiers -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tiers_from_rows_set_to_known_dates_agree_in_sql_and_in_python(settings):
    settings.RALLY_ENGAGEMENT_ACTIVE_DAYS = 90
    settings.RALLY_ENGAGEMENT_DORMANT_DAYS = 180
    settings.RALLY_ENGAGEMENT_DORMANT_MAILINGS = 10
    now = timezone.now()

    def supporter(name: str, *, joined_days_ago: int, engaged_days_ago=None, mailings=0):
        person = SupporterFactory(email=f"{name}@example.org")
        Supporter.objects.filter(pk=person.pk).update(
            created_at=now - timedelta(days=joined_days_ago)
        )
        if engaged_days_ago is not None:
            Engagement.objects.create(
                supporter=person,
                last_engaged_at=now - timedelta(days=engaged_days_ago),
                mailings_since_engaged=mailings,
            )
        return name

    expected = {
        supporter("joined-last-week", joined_days_ago=7): Tier.ACTIVE,
        supporter("joined-long-ago-never-mailed", joined_days_ago=400): Tier.LAPSING,
        supporter("clicked-a-month-ago", joined_days_ago=400, engaged_days_ago=30, mailings=20): (
            Tier.ACTIVE
        ),
        supporter("quiet-four-months", joined_days_ago=400, engaged_days_ago=120, mailings=12): (
            Tier.LAPSING
        ),
        supporter("silent-seven-months", joined_days_ago=400, engaged_days_ago=210, mailings=10): (
            Tier.DORMANT
        ),
        supporter("silent-rarely-mailed", joined_days_ago=400, engaged_days_ago=210, mailings=9): (
            Tier.LAPSING
        ),
    }  # fmt: skip

    for tier in Tier.values:
        members = set(
            Supporter.objects.filter(tier_q(tier, now=now)).values_list("email", flat=True)
        )
        assert members == {f"{name}@example.org" for name, want in expected.items() if want == tier}
    for person in Supporter.objects.select_related("engagement"):
        row = Engagement.objects.filter(supporter=person).first()
        name = person.email.removesuffix("@example.org")
        assert tier_of(row, joined_at=person.created_at, now=now) == expected[name], name


# --- The admin -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_supporter_admin_page_shows_engagement_read_only(admin_client):
    supporter = SupporterFactory(email="dormant@example.org")
    quiet_for(supporter, days=400, mailings=15)
    never = SupporterFactory(email="never@example.org")

    page = admin_client.get(f"/admin/supporters/supporter/{supporter.pk}/change/")
    content = page.content.decode()
    assert page.status_code == 200
    for label in ("Engagement tier", "Last mailed", "Last opened", "Last clicked", "Last acted"):
        assert label in content
    assert "Dormant" in content
    assert "Mailings since last engaged" in content and ">15<" in content
    assert 'name="engagement_tier"' not in content  # read-only, never a form field

    content = admin_client.get(f"/admin/supporters/supporter/{never.pk}/change/").content.decode()
    assert "Active" in content and "never" in content
    assert admin_client.get("/admin/supporters/supporter/add/").status_code == 200
