"""Send with confidence: confirm the count, schedule in a time zone, a second campaigner approves.

Through the admin pages, as campaigners use them; the send queue's own services check that a
send awaiting approval goes nowhere.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from config.lib.roles import campaigner_group_ensure
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.sending import (
    MailingStateError,
    approval,
    mailing_approve,
    mailing_cancel,
    mailing_send,
    mailing_send_batch,
    mailing_send_request,
    mailing_snapshot_and_start,
    mailing_sweep,
)
from supporters.models import Supporter
from tests.factories import MailingFactory, SupporterFactory
from tests.mailing_pages import confirmation_fields

pytestmark = pytest.mark.django_db

Action = MailingAuditEntry.Action
Status = Mailing.Status


def campaigner(username: str) -> Client:
    """A logged-in member of the Campaigner group, as the demo and production set them up."""
    user = User.objects.create_user(username, is_staff=True)
    user.groups.add(campaigner_group_ensure(group_model=Group, permission_model=Permission))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ann() -> Client:
    return campaigner("ann")


@pytest.fixture
def bob() -> Client:
    return campaigner("bob")


@pytest.fixture
def mailing() -> Mailing:
    """A draft to everyone subscribed: three supporters who read English, two Russian."""
    for number in range(3):
        SupporterFactory(email=f"en{number}@example.org", language="en")
    for number in range(2):
        SupporterFactory(email=f"ru{number}@example.org", language="ru")
    SupporterFactory(email="gone@example.org", status=Supporter.Status.UNSUBSCRIBED)
    return MailingFactory(name="Free them now")


def url(mailing: Mailing, page: str) -> str:
    return f"/admin/mailings/mailing/{mailing.pk}/{page}/"


def audit(mailing: Mailing) -> list[tuple[str, str, int | None]]:
    return list(
        MailingAuditEntry.objects.filter(mailing=mailing)
        .order_by("id")
        .values_list("action", "actor_name", "recipient_count")
    )


def status_of(mailing: Mailing) -> str:
    mailing.refresh_from_db()
    return mailing.status


def next_year(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall time (naive) safely in the future, whatever day the tests run."""
    return datetime(timezone.now().year + 1, month, day, hour, minute)  # noqa: DTZ001


def last_sunday(year: int, month: int) -> int:
    day = datetime(year, month + 1, 1) - timedelta(days=1)  # noqa: DTZ001
    return (day - timedelta(days=(day.weekday() + 1) % 7)).day


# --- Send now ------------------------------------------------------------------------------


def test_the_send_page_states_the_count_and_the_languages(ann, mailing):
    page = ann.get(url(mailing, "send")).content.decode()
    assert '<strong class="recipient-count">5</strong>' in page
    assert "English: 3, Русский: 2" in page
    assert escape(mailing.subject) in page
    assert 'name="typed_count"' in page and "Send to 5 supporters now" in page
    # Breadcrumbs lead back to the mailing.
    assert f'href="/admin/mailings/mailing/{mailing.pk}/change/"' in page


def test_a_wrongly_typed_count_sends_nothing(ann, mailing, django_capture_on_commit_callbacks):
    fields = confirmation_fields(ann, url(mailing, "send"), typed_count="4")
    with django_capture_on_commit_callbacks() as callbacks:
        response = ann.post(url(mailing, "send"), fields)
    assert response.status_code == 200
    assert "You typed 4, but this mailing would reach 5 supporters. Type 5 to confirm." in (
        response.content.decode()
    )
    assert (status_of(mailing), audit(mailing), callbacks) == (Status.DRAFT, [], [])


def test_a_count_typed_with_thousands_separators_is_read_as_digits(settings, ann, mailing):
    settings.RALLY_APPROVAL_THRESHOLD = 1_000_000
    Supporter.objects.bulk_create(
        Supporter(email=f"many{number}@example.org") for number in range(1_230)
    )
    fields = confirmation_fields(ann, url(mailing, "send"), typed_count="1,235")
    assert ann.post(url(mailing, "send"), fields).status_code == 302
    assert status_of(mailing) == Status.SENDING


def test_an_audience_that_changed_after_the_page_was_shown_is_refused_with_its_new_count(
    ann, mailing
):
    fields = confirmation_fields(ann, url(mailing, "send"))
    SupporterFactory(email="new@example.org")
    response = ann.post(url(mailing, "send"), fields, follow=True)
    page = response.content.decode()
    assert "it is 6 now, not 5. Check the new count and confirm again." in page
    assert '<strong class="recipient-count">6</strong>' in page
    assert (status_of(mailing), audit(mailing)) == (Status.DRAFT, [])


def test_a_double_post_sends_once(ann, mailing, django_capture_on_commit_callbacks):
    fields = confirmation_fields(ann, url(mailing, "send"))
    with django_capture_on_commit_callbacks() as callbacks:
        first = ann.post(url(mailing, "send"), fields, follow=True)
        second = ann.post(url(mailing, "send"), fields, follow=True)
    assert "“Free them now” is being sent to 5 supporters." in first.content.decode()
    assert second.status_code == 200
    assert "“Free them now” is already being sent" in second.content.decode()
    assert len(callbacks) == 1  # one snapshot task queued
    assert audit(mailing) == [(Action.SENT, "ann", 5)]
    mailing.refresh_from_db()
    assert mailing.send_requested_by.username == "ann" and mailing.approved_by is None


def test_a_second_schedule_post_of_the_same_page_changes_nothing(ann, mailing):
    send_at = next_year(6, 1, 9)
    fields = confirmation_fields(
        ann, url(mailing, "schedule"), send_at=f"{send_at:%Y-%m-%dT%H:%M}", zone="UTC"
    )
    ann.post(url(mailing, "schedule"), fields)
    again = ann.post(url(mailing, "schedule"), fields, follow=True)
    # Scheduled is a status a schedule may start from: the version on the page is what stops it.
    assert "was changed after you confirmed; check it and confirm again" in again.content.decode()
    assert [action for action, _, _ in audit(mailing)] == [Action.SCHEDULED]


def test_an_empty_audience_is_refused(ann):
    mailing = MailingFactory(audience_language="ru")
    SupporterFactory(language="en")
    page = ann.get(url(mailing, "send")).content.decode()
    assert "would reach nobody" in page and 'name="typed_count"' not in page
    forged = {"shown_count": "0", "typed_count": "0", "shown_version": "2000-01-01T00:00:00"}
    response = ann.post(url(mailing, "send"), forged, follow=True)
    assert "“Appeal" in response.content.decode()
    assert "would reach nobody: no subscribed supporter matches its audience" in (
        response.content.decode()
    )
    assert (status_of(mailing), audit(mailing)) == (Status.DRAFT, [])


@pytest.mark.parametrize(
    ("status", "said"),
    [(Status.SENDING, "is already being sent"), (Status.SENT, "has been sent already")],
)
def test_a_mailing_already_sending_or_sent_is_refused(ann, mailing, status, said):
    fields = confirmation_fields(ann, url(mailing, "send"))
    Mailing.objects.filter(pk=mailing.pk).update(status=status)
    page = ann.get(url(mailing, "send")).content.decode()
    assert "only a draft or scheduled mailing can be sent" in page
    assert 'name="typed_count"' not in page
    response = ann.post(url(mailing, "send"), fields, follow=True)
    assert f"“Free them now” {said}: only a draft or scheduled mailing can be sent." in (
        response.content.decode()
    )
    assert (status_of(mailing), audit(mailing)) == (status, [])


def test_without_the_send_permission_no_button_shows_and_a_forged_post_is_refused(client, mailing):
    fields = confirmation_fields(campaigner("ann"), url(mailing, "send"))
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_mailing", "change_mailing"])
    )
    client.force_login(user)
    change_page = client.get(url(mailing, "change")).content.decode()
    assert "Send…" not in change_page and "Schedule…" not in change_page
    for page in ["send", "schedule", "approve"]:
        assert client.get(url(mailing, page)).status_code == 403, page
        assert client.post(url(mailing, page), fields).status_code == 403, page
    Mailing.objects.filter(pk=mailing.pk).update(status=Status.SCHEDULED)
    assert client.post(url(mailing, "unschedule")).status_code == 403
    assert (status_of(mailing), audit(mailing)) == (Status.SCHEDULED, [])


def test_the_change_form_offers_what_the_status_allows(ann, mailing):
    draft = ann.get(url(mailing, "change")).content.decode()
    assert f'href="{url(mailing, "send")}"' in draft
    assert f'href="{url(mailing, "schedule")}"' in draft
    assert "Approve…" not in draft
    Mailing.objects.filter(pk=mailing.pk).update(status=Status.SENT)
    sent = ann.get(url(mailing, "change")).content.decode()
    assert "Send…" not in sent and "Schedule…" not in sent


def test_the_list_actions_open_the_send_and_schedule_pages_and_send_nothing(ann, mailing):
    for action, page in [("send_now", "send"), ("schedule", "schedule")]:
        response = ann.post(
            "/admin/mailings/mailing/", {"action": action, "_selected_action": [mailing.pk]}
        )
        assert (response.status_code, response.url) == (302, url(mailing, page))
    assert (status_of(mailing), audit(mailing)) == (Status.DRAFT, [])


# --- Schedule ------------------------------------------------------------------------------


def test_a_time_that_has_passed_is_refused(ann, mailing):
    an_hour_ago = timezone.now().astimezone(ZoneInfo("Europe/London")) - timedelta(hours=1)
    fields = confirmation_fields(
        ann,
        url(mailing, "schedule"),
        send_at=f"{an_hour_ago:%Y-%m-%dT%H:%M}",
        zone="Europe/London",
    )
    response = ann.post(url(mailing, "schedule"), fields)
    assert response.status_code == 200
    assert "That time has passed: it is now" in response.content.decode()
    assert "in Europe/London. Choose a later time." in response.content.decode()
    assert (status_of(mailing), audit(mailing)) == (Status.DRAFT, [])


def test_the_schedule_service_refuses_a_time_that_has_passed_too(mailing):
    with pytest.raises(MailingStateError, match="That time has passed"):
        mailing_send_request(
            mailing=mailing, actor=None, send_at=timezone.now() - timedelta(minutes=1)
        )
    assert (status_of(mailing), audit(mailing)) == (Status.DRAFT, [])


def test_a_time_in_a_campaigners_zone_is_stored_as_that_instant_and_shown_back_in_it(ann, mailing):
    wall_time = next_year(7, 1, 9)  # summer: New York is four hours behind UTC
    fields = confirmation_fields(
        ann,
        url(mailing, "schedule"),
        send_at=f"{wall_time:%Y-%m-%dT%H:%M}",
        zone="America/New_York",
    )
    response = ann.post(url(mailing, "schedule"), fields, follow=True)
    mailing.refresh_from_db()
    assert mailing.status == Status.SCHEDULED
    assert mailing.scheduled_at == wall_time.replace(tzinfo=ZoneInfo("America/New_York"))
    assert mailing.scheduled_at.astimezone(ZoneInfo("UTC")).hour == 13
    shown = f"{wall_time:%A %d %B %Y}, 09:00 (America/New_York), 13:00 UTC"
    assert f"will be sent to 5 supporters on {shown}." in response.content.decode()
    # The page shows it back in the zone chosen, and offers that zone first next time.
    page = ann.get(url(mailing, "schedule")).content.decode()
    assert f'<strong class="scheduled-for">{shown}</strong>' in page
    assert '<option value="America/New_York" selected>' in page
    assert audit(mailing) == [(Action.SCHEDULED, "ann", 5)]
    assert MailingAuditEntry.objects.get(mailing=mailing).detail == f"for {shown}"


def test_the_schedule_page_offers_the_configured_zone_first(settings, ann, mailing):
    settings.RALLY_CAMPAIGNER_TIMEZONE = "Europe/London"
    page = ann.get(url(mailing, "schedule")).content.decode()
    assert '<option value="Europe/London" selected>' in page
    assert 'value="Etc/GMT+5"' not in page  # five hours *behind* UTC: a trap, left out


@pytest.mark.parametrize(
    ("month", "hour", "said"),
    [(3, 1, "the clocks go forward then"), (10, 1, "happens twice in Europe/London")],
)
def test_a_time_the_clocks_skip_or_repeat_is_refused(ann, mailing, month, hour, said):
    year = timezone.now().year + 1
    wall_time = datetime(year, month, last_sunday(year, month), hour, 30)  # noqa: DTZ001
    fields = confirmation_fields(
        ann,
        url(mailing, "schedule"),
        send_at=f"{wall_time:%Y-%m-%dT%H:%M}",
        zone="Europe/London",
    )
    response = ann.post(url(mailing, "schedule"), fields)
    assert said in response.content.decode()
    assert (status_of(mailing), audit(mailing)) == (Status.DRAFT, [])


def test_unschedule_takes_a_scheduled_mailing_back_to_a_draft_once(ann, mailing):
    fields = confirmation_fields(
        ann, url(mailing, "schedule"), send_at=f"{next_year(6, 1, 9):%Y-%m-%dT%H:%M}", zone="UTC"
    )
    ann.post(url(mailing, "schedule"), fields)
    assert ann.get(url(mailing, "unschedule")).status_code == 405  # a GET changes nothing
    response = ann.post(url(mailing, "unschedule"), follow=True)
    assert "is a draft again" in response.content.decode()
    mailing.refresh_from_db()
    assert (mailing.status, mailing.scheduled_at) == (Status.DRAFT, None)
    again = ann.post(url(mailing, "unschedule"), follow=True)
    assert "only a scheduled mailing or a send awaiting approval can be unscheduled" in (
        again.content.decode()
    )
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now() - timedelta(hours=1))
    mailing_sweep()
    assert status_of(mailing) == Status.DRAFT
    assert [action for action, _, _ in audit(mailing)] == [Action.SCHEDULED, Action.UNSCHEDULED]


def test_a_scheduled_mailing_cannot_be_edited_until_it_is_unscheduled(ann, mailing):
    Mailing.objects.filter(pk=mailing.pk).update(status=Status.SCHEDULED)
    page = ann.get(url(mailing, "change")).content.decode()
    assert 'name="subject"' not in page and 'name="audience_language"' not in page


# --- Approval ------------------------------------------------------------------------------


@pytest.fixture
def large(settings):
    """Five recipients is more than this threshold: every send in these tests needs approval."""
    settings.RALLY_APPROVAL_THRESHOLD = 4


def test_above_the_threshold_a_send_waits_and_the_send_queue_does_nothing(
    large, ann, mailing, django_capture_on_commit_callbacks
):
    page = ann.get(url(mailing, "send")).content.decode()
    assert "more than 4 recipients: the send waits for another campaigner" in page
    fields = confirmation_fields(ann, url(mailing, "send"))
    with django_capture_on_commit_callbacks() as callbacks:
        response = ann.post(url(mailing, "send"), fields, follow=True)
    assert "it waits for another campaigner to approve it" in response.content.decode()
    assert callbacks == []  # no snapshot queued
    mailing.refresh_from_db()
    assert (mailing.status, mailing.send_requested_by.username) == (
        Status.AWAITING_APPROVAL,
        "ann",
    )
    assert audit(mailing) == [(Action.SEND_REQUESTED, "ann", 5)]

    # Nothing in the send queue moves it: not beat, not a stray task, not the command.
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks() as callbacks:
        mailing_sweep()
        mailing_snapshot_and_start(mailing_id=mailing.pk)
        assert not mailing_send_batch(mailing_id=mailing.pk, worker="w").more
        with pytest.raises(MailingStateError, match="is awaiting approval: only a draft"):
            mailing_send(mailing=mailing)
    assert callbacks == []
    assert status_of(mailing) == Status.AWAITING_APPROVAL
    assert not Delivery.objects.filter(mailing=mailing).exists()


def test_the_campaigner_who_asked_cannot_approve_their_own_send(large, ann, mailing):
    ann.post(url(mailing, "send"), confirmation_fields(ann, url(mailing, "send")))
    assert "Approve…" not in ann.get(url(mailing, "change")).content.decode()
    page = ann.get(url(mailing, "approve")).content.decode()
    assert "you asked for this send; another campaigner must approve it" in page
    assert 'name="typed_count"' not in page
    forged = {"shown_count": "5", "typed_count": "5", "shown_version": "2000-01-01T00:00:00"}
    response = ann.post(url(mailing, "approve"), forged, follow=True)
    assert "You asked for this send; another campaigner must approve it." in (
        response.content.decode()
    )
    assert status_of(mailing) == Status.AWAITING_APPROVAL
    assert [action for action, _, _ in audit(mailing)] == [Action.SEND_REQUESTED]


def test_a_second_campaigner_approves_and_the_send_starts_once(
    large, ann, bob, mailing, django_capture_on_commit_callbacks
):
    ann.post(url(mailing, "send"), confirmation_fields(ann, url(mailing, "send")))
    assert f'href="{url(mailing, "approve")}"' in bob.get(url(mailing, "change")).content.decode()
    page = bob.get(url(mailing, "approve")).content.decode()
    assert "ann asked to send it" in page and "English: 3, Русский: 2" in page
    fields = confirmation_fields(bob, url(mailing, "approve"))
    with django_capture_on_commit_callbacks() as callbacks:
        approved = bob.post(url(mailing, "approve"), fields, follow=True)
        again = bob.post(url(mailing, "approve"), fields, follow=True)
    assert "is being sent to 5 supporters" in approved.content.decode()
    assert "is already being sent" in again.content.decode()
    assert len(callbacks) == 1
    mailing.refresh_from_db()
    assert (mailing.status, mailing.approved_by.username) == (Status.SENDING, "bob")
    assert mailing.approved_at is not None
    assert audit(mailing) == [
        (Action.SEND_REQUESTED, "ann", 5),
        (Action.APPROVED, "bob", 5),
        (Action.SENT, "bob", 5),
    ]


def test_a_send_approved_before_its_time_waits_for_it(
    large, ann, bob, mailing, django_capture_on_commit_callbacks
):
    wall_time = next_year(6, 1, 9)
    fields = confirmation_fields(
        ann, url(mailing, "schedule"), send_at=f"{wall_time:%Y-%m-%dT%H:%M}", zone="UTC"
    )
    ann.post(url(mailing, "schedule"), fields)
    mailing.refresh_from_db()
    assert (mailing.status, mailing.scheduled_at) == (
        Status.AWAITING_APPROVAL,
        wall_time.replace(tzinfo=ZoneInfo("UTC")),
    )
    page = bob.get(url(mailing, "approve")).content.decode()
    assert "approving schedules it for then" in page
    with django_capture_on_commit_callbacks() as callbacks:
        bob.post(url(mailing, "approve"), confirmation_fields(bob, url(mailing, "approve")))
        mailing_sweep()
    assert (status_of(mailing), callbacks) == (Status.SCHEDULED, [])
    assert [action for action, _, _ in audit(mailing)] == [
        Action.SEND_REQUESTED,
        Action.APPROVED,
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
        mailing_sweep()
    assert (status_of(mailing), len(callbacks)) == (Status.SENDING, 1)


def test_a_request_withdrawn_before_approval_cannot_be_approved(large, ann, bob, mailing):
    ann.post(url(mailing, "send"), confirmation_fields(ann, url(mailing, "send")))
    fields = confirmation_fields(bob, url(mailing, "approve"))
    ann.post(url(mailing, "unschedule"))
    response = bob.post(url(mailing, "approve"), fields, follow=True)
    assert "only a send awaiting approval can be approved" in response.content.decode()
    mailing.refresh_from_db()
    assert (mailing.status, mailing.send_requested_by, mailing.approved_by) == (
        Status.DRAFT,
        None,
        None,
    )
    assert audit(mailing)[-1][:2] == (Action.UNSCHEDULED, "ann")


def test_approval_is_a_conditional_update_safe_to_call_twice(large, mailing):
    ann, bob = User.objects.create_user("ann"), User.objects.create_user("bob")
    mailing_send_request(mailing=mailing, actor=ann)
    with pytest.raises(MailingStateError, match="another campaigner must approve it"):
        mailing_approve(mailing=mailing, actor=ann)
    stale = Mailing.objects.get(pk=mailing.pk)
    mailing_approve(mailing=mailing, actor=bob)
    with pytest.raises(MailingStateError, match="is already being sent"):
        mailing_approve(mailing=stale, actor=bob)
    assert [action for action, _, _ in audit(mailing)] == [
        Action.SEND_REQUESTED,
        Action.APPROVED,
        Action.SENT,
    ]


def test_a_send_asked_for_by_a_since_deleted_user_can_still_be_approved(large, mailing):
    ann, bob = User.objects.create_user("ann"), User.objects.create_user("bob")
    mailing_send_request(mailing=mailing, actor=ann)
    ann.delete()
    assert mailing_approve(mailing=mailing, actor=bob).status == Status.SENDING


@pytest.mark.parametrize("large_send", [False, True])
def test_two_campaigners_confirming_at_the_same_moment_start_one_send(
    settings, monkeypatch, mailing, large_send
):
    """The second confirmation passed every check before the first one's UPDATE committed."""
    if large_send:
        settings.RALLY_APPROVAL_THRESHOLD = 4
    ann, bob = User.objects.create_user("ann"), User.objects.create_user("bob")
    checked = approval._audience_count_checked

    def ann_confirms_while_bob_counts(mailing, confirmed_count):
        monkeypatch.setattr(approval, "_audience_count_checked", checked)
        mailing_send_request(mailing=Mailing.objects.get(pk=mailing.pk), actor=ann)
        return checked(mailing, confirmed_count)

    monkeypatch.setattr(approval, "_audience_count_checked", ann_confirms_while_bob_counts)
    expected = "is awaiting approval: only a draft" if large_send else "is already being sent"
    with pytest.raises(MailingStateError, match=expected):
        mailing_send_request(mailing=mailing, actor=bob)
    assert [actor for _, actor, _ in audit(mailing)] == ["ann"]


def test_two_approvals_at_the_same_moment_start_one_send(large, monkeypatch, mailing):
    ann, bob, cy = (User.objects.create_user(name) for name in ["ann", "bob", "cy"])
    mailing_send_request(mailing=mailing, actor=ann)
    checked = approval._audience_count_checked

    def bob_approves_while_cy_counts(mailing, confirmed_count):
        monkeypatch.setattr(approval, "_audience_count_checked", checked)
        mailing_approve(mailing=Mailing.objects.get(pk=mailing.pk), actor=bob)
        return checked(mailing, confirmed_count)

    monkeypatch.setattr(approval, "_audience_count_checked", bob_approves_while_cy_counts)
    with pytest.raises(MailingStateError, match="is already being sent"):
        mailing_approve(mailing=mailing, actor=cy)
    assert audit(mailing) == [
        (Action.SEND_REQUESTED, "ann", 5),
        (Action.APPROVED, "bob", 5),
        (Action.SENT, "bob", 5),
    ]


def test_a_send_awaiting_approval_can_be_cancelled(large, mailing):
    mailing_send_request(mailing=mailing, actor=User.objects.create_user("ann"))
    assert mailing_cancel(mailing_id=mailing.pk)
    assert status_of(mailing) == Status.CANCELLED
