"""The progress page of a mailing, its JSON twin and its pause/resume/cancel buttons."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from espfakes import FakePostmark
from mailings.admin_views.progress import duration_in_words
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.selectors import mailing_progress
from mailings.sending import mailing_send
from tests.admin_users import staff_user
from tests.factories import MailingFactory, SupporterFactory
from tests.processes import wait_for

# Operators' scripts read these keys: adding, renaming or dropping one breaks them.
PROGRESS_JSON_KEYS = {
    "status", "total", "sent", "failed", "skipped", "cancelled", "unknown", "pending",
    "rate_per_s", "eta_seconds", "results",
}  # fmt: skip

Status = Delivery.Status
Action = MailingAuditEntry.Action


def page_url(mailing) -> str:
    return f"/admin/mailings/mailing/{mailing.pk}/progress/"


def json_url(mailing) -> str:
    return f"/admin/mailings/mailing/{mailing.pk}/progress.json"


def control_url(mailing) -> str:
    return f"/admin/mailings/mailing/{mailing.pk}/progress/control/"


def add_deliveries(mailing, status: str, count: int, *, sent_ago: timedelta | None = None):
    """Add `count` deliveries in `status` to the ledger, sent `sent_ago` before now if given."""
    sent_at = timezone.now() - sent_ago if sent_ago is not None else None
    Delivery.objects.bulk_create(
        Delivery(mailing=mailing, supporter=SupporterFactory(), status=status, sent_at=sent_at)
        for _ in range(count)
    )


def staff_client(client, *codenames, username="staff"):
    user = staff_user(*codenames, username=username)
    client.force_login(user)
    return client, user


@pytest.fixture
def sending():
    return MailingFactory(status=Mailing.Status.SENDING, audience_snapshot_at=timezone.now())


@pytest.fixture
def controller(client):
    """A client whose user may view mailings and pause, resume and cancel them."""
    return staff_client(client, "view_mailing", "control_mailing")


# The figures


@pytest.mark.django_db
def test_the_figures_of_a_hand_made_ledger(sending):
    add_deliveries(sending, Status.SENT, 2, sent_ago=timedelta(seconds=5))
    add_deliveries(sending, Status.SENT, 4, sent_ago=timedelta(seconds=40))
    add_deliveries(sending, Status.SENT, 3, sent_ago=timedelta(seconds=90))
    add_deliveries(sending, Status.SENT, 1, sent_ago=timedelta(hours=1))
    add_deliveries(sending, Status.FAILED, 2)
    add_deliveries(sending, Status.SKIPPED, 3)
    add_deliveries(sending, Status.CANCELLED, 1)
    add_deliveries(sending, Status.UNKNOWN, 1)
    add_deliveries(sending, Status.PENDING, 5)
    add_deliveries(sending, Status.CLAIMED, 2)
    add_deliveries(MailingFactory(), Status.SENT, 2, sent_ago=timedelta(seconds=5))

    progress = mailing_progress(sending)

    assert (progress.status, progress.total) == ("sending", 24)
    assert (progress.sent, progress.failed, progress.skipped) == (10, 2, 3)
    assert (progress.cancelled, progress.unknown, progress.pending) == (1, 1, 7)
    assert progress.rate_per_s == 0.1  # 6 sent in the last minute, of this mailing
    assert progress.eta_seconds == 70  # 7 pending at 0.1 a second
    assert progress.done == 17


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sent_last_minute", "pending", "rate_per_s", "eta_seconds"),
    [
        (0, 5, 0.0, None),  # nothing sent lately: no ETA
        (2, 5, 0.0, None),  # 0.033… a second rounds to 0: still none
        (3, 5, 0.1, 50),  # 0.05 rounds half up
        (42, 21, 0.7, 30),  # 30 exactly, where float division gives 30.000…04
        (90, 7, 1.5, 5),  # 4.67 s rounds up
        (12, 0, 0.2, None),  # nothing pending: no ETA
    ],
)
def test_rate_and_eta(sending, sent_last_minute, pending, rate_per_s, eta_seconds):
    add_deliveries(sending, Status.SENT, sent_last_minute, sent_ago=timedelta(seconds=10))
    add_deliveries(sending, Status.SENT, 30, sent_ago=timedelta(minutes=5))
    add_deliveries(sending, Status.PENDING, pending)

    progress = mailing_progress(sending)

    assert (progress.rate_per_s, progress.eta_seconds) == (rate_per_s, eta_seconds)


@pytest.mark.django_db
def test_a_mailing_without_deliveries_has_zero_everywhere_and_no_eta():
    progress = mailing_progress(MailingFactory())
    assert (progress.total, progress.pending, progress.rate_per_s) == (0, 0, 0.0)
    assert progress.eta_seconds is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (125, "2 minutes 5 seconds"),
        (3600, "1 hour"),
        (3661, "1 hour 1 minute"),
        (90_000, "25 hours"),
    ],
)
def test_duration_in_words(seconds, words):
    assert duration_in_words(seconds) == words


# progress.json


@pytest.mark.django_db
def test_progress_json_has_exactly_the_contract_keys_and_the_selectors_figures(
    admin_client, sending
):
    add_deliveries(sending, Status.SENT, 6, sent_ago=timedelta(seconds=10))
    add_deliveries(sending, Status.FAILED, 1)
    add_deliveries(sending, Status.PENDING, 3)

    response = admin_client.get(json_url(sending))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    figures = json.loads(response.content)
    assert set(figures) == PROGRESS_JSON_KEYS
    figures.pop("results")  # tests/mailings/admin_views/test_progress_results.py
    assert figures == {
        "status": "sending",
        "total": 10,
        "sent": 6,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
        "unknown": 0,
        "pending": 3,
        "rate_per_s": 0.1,
        "eta_seconds": 30,
    }


@pytest.mark.django_db
def test_progress_json_says_null_for_an_eta_it_cannot_know(admin_client, sending):
    add_deliveries(sending, Status.SENT, 4, sent_ago=timedelta(minutes=10))
    add_deliveries(sending, Status.PENDING, 3)

    figures = admin_client.get(json_url(sending)).json()

    assert (figures["rate_per_s"], figures["eta_seconds"], figures["pending"]) == (0.0, None, 3)
    assert '"eta_seconds": null' in admin_client.get(json_url(sending)).content.decode()


# Who may see it


@pytest.mark.django_db
@pytest.mark.parametrize("url", [page_url, json_url])
def test_anonymous_users_are_sent_to_log_in(client, sending, url):
    response = client.get(url(sending))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("url", [page_url, json_url])
def test_staff_without_the_view_permission_get_403(client, sending, url):
    staff_client(client, "control_mailing")
    assert client.get(url(sending)).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("codename", ["view_mailing", "change_mailing"])
def test_the_view_or_change_permission_is_enough_to_watch(client, sending, codename):
    staff_client(client, codename)
    assert client.get(page_url(sending)).status_code == 200
    assert client.get(json_url(sending)).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", [page_url, json_url])
def test_a_missing_mailing_is_404(admin_client, url):
    missing = Mailing(pk=987654)
    assert admin_client.get(url(missing)).status_code == 404


# The page


@pytest.mark.django_db
def test_the_page_shows_the_figures_a_progress_bar_and_reloads_while_sending(admin_client, sending):
    Mailing.objects.filter(pk=sending.pk).update(
        status=Mailing.Status.PAUSED, status_reason="Paused automatically: 80% failed"
    )
    add_deliveries(sending, Status.SENT, 12, sent_ago=timedelta(seconds=10))
    add_deliveries(sending, Status.UNKNOWN, 1)
    add_deliveries(sending, Status.PENDING, 7)

    page = admin_client.get(page_url(sending)).content.decode()

    assert "Paused automatically: 80% failed" in page
    assert '<progress id="mailing-progress-bar" max="20" value="13">' in page
    assert '<label for="mailing-progress-bar">13 of 20 deliveries done</label>' in page
    assert '<td class="number" id="count-sent">12</td>' in page
    assert '<td class="number" id="count-unknown">1</td>' in page
    assert '<td class="number" id="count-pending">7</td>' in page
    assert '<strong id="rate">0.2</strong>' in page
    assert '<strong id="eta">about 35 seconds</strong> once resumed' in page
    assert '<meta http-equiv="refresh" content="5">' in page
    assert f'<a href="/admin/mailings/mailing/{sending.pk}/change/">' in page  # breadcrumbs
    assert "http-equiv" not in admin_client.get(page_url(sending) + "?refresh=off").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Mailing.Status.SENT, Mailing.Status.CANCELLED])
def test_the_page_of_a_finished_mailing_stops_reloading(admin_client, status):
    mailing = MailingFactory(status=status)
    page = admin_client.get(page_url(mailing)).content.decode()
    assert "http-equiv" not in page
    assert "nothing is left to send" in page
    assert 'name="action"' not in page


@pytest.mark.django_db
def test_the_change_form_and_the_changelist_link_to_the_page(admin_client, sending):
    add_deliveries(sending, Status.PENDING, 2)
    link = f'<a href="{page_url(sending)}">'
    change_form = admin_client.get(f"/admin/mailings/mailing/{sending.pk}/change/")
    assert "Pending: 2" in change_form.content.decode()
    assert link in change_form.content.decode()
    assert link in admin_client.get("/admin/mailings/mailing/").content.decode()


# The buttons


@pytest.mark.django_db
def test_without_control_permission_there_are_no_buttons_and_a_forged_post_changes_nothing(
    client, sending
):
    staff_client(client, "view_mailing", "change_mailing")
    assert 'name="action"' not in client.get(page_url(sending)).content.decode()

    for action in ["pause", "cancel"]:
        response = client.post(control_url(sending), {"action": action, "confirmed": "yes"})
        assert response.status_code == 403
    sending.refresh_from_db()
    assert sending.status == Mailing.Status.SENDING
    assert not MailingAuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_controller_sees_the_buttons_the_state_allows(controller, sending):
    client, _ = controller
    page = client.get(page_url(sending)).content.decode()
    assert ('value="pause"' in page, 'value="resume"' in page, 'value="cancel"' in page) == (
        True,
        False,
        True,
    )
    Mailing.objects.filter(pk=sending.pk).update(status=Mailing.Status.PAUSED)
    page = client.get(page_url(sending)).content.decode()
    assert ('value="pause"' in page, 'value="resume"' in page, 'value="cancel"' in page) == (
        False,
        True,
        True,
    )


@pytest.mark.django_db
def test_pause_and_resume_through_the_page_are_audited_with_the_user(
    controller, sending, django_capture_on_commit_callbacks
):
    client, user = controller

    response = client.post(control_url(sending), {"action": "pause"}, follow=True)

    assert response.redirect_chain == [(page_url(sending), 302)]
    assert f"“{sending}” is paused." in response.content.decode()
    sending.refresh_from_db()
    assert sending.status == Mailing.Status.PAUSED

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(control_url(sending), {"action": "resume"}, follow=True)

    assert f"“{sending}” is sending again." in response.content.decode()
    sending.refresh_from_db()
    assert sending.status == Mailing.Status.SENDING
    entries = MailingAuditEntry.objects.order_by("id").values_list("action", "actor", "actor_name")
    assert list(entries) == [
        (Action.PAUSED, user.pk, "staff"),
        (Action.RESUMED, user.pk, "staff"),
    ]


@pytest.mark.django_db
def test_cancel_asks_first_then_cancels_what_is_pending_and_is_audited(controller, sending):
    client, user = controller
    add_deliveries(sending, Status.SENT, 2, sent_ago=timedelta(seconds=5))
    add_deliveries(sending, Status.PENDING, 3)

    confirmation = client.post(control_url(sending), {"action": "cancel"})

    assert confirmation.status_code == 200
    assert "the 3 not sent yet will never be sent" in confirmation.content.decode()
    assert 'name="confirmed" value="yes"' in confirmation.content.decode()
    sending.refresh_from_db()
    assert sending.status == Mailing.Status.SENDING

    response = client.post(
        control_url(sending), {"action": "cancel", "confirmed": "yes"}, follow=True
    )

    assert response.redirect_chain == [(page_url(sending), 302)]
    assert "is cancelled" in response.content.decode()
    sending.refresh_from_db()
    assert sending.status == Mailing.Status.CANCELLED
    figures = mailing_progress(sending)
    assert (figures.sent, figures.cancelled, figures.pending) == (2, 3, 0)
    entry = MailingAuditEntry.objects.get()
    assert (entry.action, entry.actor) == (Action.CANCELLED, user)


@pytest.mark.django_db
def test_a_control_the_state_does_not_allow_is_refused_with_the_reason(controller):
    client, _ = controller
    mailing = MailingFactory(status=Mailing.Status.SENT)

    for action, reason in [
        ("pause", "only a sending mailing can pause"),
        ("resume", "only a paused one resumes"),
        ("cancel", "only a mailing that has not finished can be cancelled"),
    ]:
        response = client.post(control_url(mailing), {"action": action}, follow=True)
        assert f"“{mailing}” is sent: {reason}." in response.content.decode()

    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENT
    assert not MailingAuditEntry.objects.exists()


@pytest.mark.django_db
def test_an_unknown_action_or_a_get_changes_nothing(controller, sending):
    client, _ = controller
    assert client.post(control_url(sending), {"action": "delete"}).status_code == 400
    assert client.get(control_url(sending)).status_code == 405
    sending.refresh_from_db()
    assert sending.status == Mailing.Status.SENDING


# With a real worker


def test_progress_json_follows_a_real_send_to_sent_with_nothing_pending(
    celery_worker_factory, client
):
    recipients = 30
    for number in range(recipients):
        SupporterFactory(email=f"reader{number}@example.org")
    mailing = MailingFactory()
    staff_client(client, "view_mailing")

    mailing_send(mailing=mailing)
    # Read before a worker runs, so that the send is certainly seen in progress.
    before = client.get(json_url(mailing)).json()
    assert (before["status"], before["total"], before["eta_seconds"]) == ("sending", 0, None)

    with FakePostmark() as esp:
        worker = celery_worker_factory(
            EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
            ANYMAIL=json.dumps(
                {"POSTMARK_SERVER_TOKEN": esp.server_token, "POSTMARK_API_URL": esp.api_url}
            ),
            RALLY_SEND_BATCH_SIZE="7",
            RALLY_SEND_PARALLELISM="2",
        )
        seen = []

        def sent():
            figures = client.get(json_url(mailing)).json()
            assert set(figures) == PROGRESS_JSON_KEYS
            seen.append(figures)
            return figures["status"] == "sent"

        wait_for(
            sent,
            timeout=60,
            interval=0.2,
            message=lambda: f"last read {seen[-1:]}; worker log:\n{worker.log()[-3000:]}",
        )
        assert esp.counts() == {f"reader{number}@example.org": 1 for number in range(recipients)}

    final = seen[-1]
    assert final["sent"] == final["total"] == recipients
    assert (final["pending"], final["failed"], final["unknown"]) == (0, 0, 0)
    assert final["rate_per_s"] > 0  # everything went out within the last minute
    assert final["eta_seconds"] is None
    assert all(figures["status"] in ("sending", "sent") for figures in seen)
