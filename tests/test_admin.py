"""The admin as a campaigner uses it: every page loads, mailings validate and send."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from mailings.models import Mailing, MailingAuditEntry
from tests.factories import MAILING_FORM_NO_VERSIONS
from tests.mailing_pages import confirmation_fields

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "supporters/supporter", "supporters/tag", "supporters/consentrecord",
    "campaigns/campaign", "campaigns/petition", "campaigns/signature",
    "mailings/mailing", "mailings/delivery", "mailings/trackingevent", "mailings/outboxmessage",
]  # fmt: skip


@pytest.fixture
def campaigner_client(client):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    client.force_login(User.objects.get(username="campaigner"))
    return client


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_every_admin_list_and_add_page_loads_for_a_campaigner(campaigner_client, page):
    assert campaigner_client.get(f"/admin/{page}/").status_code == 200
    assert campaigner_client.get(f"/admin/{page}/?q=navalny").status_code == 200


def test_mailing_change_page_shows_merge_fields_and_progress(campaigner_client):
    mailing = Mailing.objects.get()
    page = campaigner_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()
    assert "{{ petition_url }}" in page
    assert "No deliveries yet." in page


def mailing_form_data(mailing, **changes):
    data = {
        "campaign": mailing.campaign_id, "petition": mailing.petition_id, "name": mailing.name,
        "subject": mailing.subject, "preheader": "",
        "sender": f"{mailing.from_name} <{mailing.from_email}>", "html_body": mailing.html_body,
        "text_body": mailing.text_body, "audience_not_signed_petition": mailing.petition_id,
        "audience_language": "", "audience_country": "", "scheduled_at_0": "",
        "scheduled_at_1": "",
    }  # fmt: skip
    return {**data, **MAILING_FORM_NO_VERSIONS, **changes}


def test_saving_a_mailing_with_an_unknown_merge_field_is_refused(campaigner_client):
    mailing = Mailing.objects.get()
    response = campaigner_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        mailing_form_data(mailing, text_body="Dear {{ frist_name }}"),
    )
    assert response.status_code == 200
    assert "Line 1: unknown merge field frist_name" in response.content.decode()
    mailing.refresh_from_db()
    assert "frist_name" not in mailing.text_body


def test_saving_a_mailing_sanitises_its_html(campaigner_client):
    mailing = Mailing.objects.get()
    response = campaigner_client.post(
        f"/admin/mailings/mailing/{mailing.pk}/change/",
        mailing_form_data(
            mailing, html_body='<p onclick="steal()">Hi {{ first_name }}</p><script>x()</script>'
        ),
    )
    assert response.status_code == 302
    mailing.refresh_from_db()
    assert mailing.html_body == "<p>Hi {{ first_name }}</p>"


def test_send_now_action_starts_the_send_once(
    campaigner_client, django_capture_on_commit_callbacks
):
    """The action opens the confirmation page; confirmed there, the send starts once."""
    mailing = Mailing.objects.get()
    send_url = f"/admin/mailings/mailing/{mailing.pk}/send/"
    action = campaigner_client.post(
        "/admin/mailings/mailing/", {"action": "send_now", "_selected_action": [mailing.pk]}
    )
    assert action.status_code == 302 and action.url == send_url
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT  # nothing goes out from the list unconfirmed

    confirmed = confirmation_fields(campaigner_client, send_url)
    with django_capture_on_commit_callbacks() as callbacks:
        response = campaigner_client.post(send_url, confirmed, follow=True)
    assert "is being sent" in response.content.decode()
    assert len(callbacks) == 1
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENDING

    again = campaigner_client.post(
        "/admin/mailings/mailing/",
        {"action": "send_now", "_selected_action": [mailing.pk]},
        follow=True,
    )
    assert "only a draft or scheduled mailing can be sent" in again.content.decode()
    assert 'name="typed_count"' not in again.content.decode()
    resent = campaigner_client.post(send_url, confirmed, follow=True)
    assert "is already being sent" in resent.content.decode()
    assert MailingAuditEntry.objects.filter(action=MailingAuditEntry.Action.SENT).count() == 1


def test_the_send_now_action_asks_for_exactly_one_mailing(campaigner_client):
    first = Mailing.objects.get()
    second = Mailing.objects.create(
        campaign=first.campaign, name="Second", subject="Hi", from_name="Rally",
        from_email="rally@example.org", html_body="<p>Hi</p>", text_body="Hi",
    )  # fmt: skip
    response = campaigner_client.post(
        "/admin/mailings/mailing/",
        {"action": "send_now", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert "Select exactly one mailing to send" in response.content.decode()
    assert set(Mailing.objects.values_list("status", flat=True)) == {Mailing.Status.DRAFT}
