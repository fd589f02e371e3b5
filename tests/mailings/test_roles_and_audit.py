"""The Campaigner role and the audit log: who may change a mailing's state, and the record of it."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command

from config.lib.roles import CAMPAIGNER_GROUP, CAMPAIGNER_PERMISSIONS, campaigner_group_ensure
from mailings.models import Mailing, MailingAuditEntry, OutboxMessage
from mailings.sending import mailing_cancel, mailing_pause, mailing_resume
from supporters.models import Supporter
from tests.admin_users import staff_client, staff_user
from tests.factories import MAILING_FORM_NO_VERSIONS, MailingFactory, SupporterFactory
from tests.mailing_pages import confirmation_fields

pytestmark = pytest.mark.django_db

Action = MailingAuditEntry.Action
CREATE_GROUP = importlib.import_module("mailings.migrations.0009_campaigner_group")
# The migration that last granted the role its rights.
LATEST_ROLE = importlib.import_module("mailings.migrations.0024_campaigner_builds_segments")


@pytest.fixture
def campaigner_client(client):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    client.force_login(User.objects.get(username="campaigner"))
    return client


def test_the_migration_makes_the_campaigner_group_with_its_rights_and_no_more():
    Group.objects.filter(name=CAMPAIGNER_GROUP).delete()
    CREATE_GROUP.create_campaigner_group(apps, None)
    granted = {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=CAMPAIGNER_GROUP).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }
    assert {
        "mailings.send_mailing",
        "mailings.approve_mailing",
        "mailings.control_mailing",
        "mailings.test_send_mailing",
        "mailings.change_mailing",
        "mailings.view_delivery",
        "mailings.view_mailingauditentry",
    } <= granted
    forbidden = {
        "supporters.delete_supporter",
        "supporters.change_supporter",
        "campaigns.export_signatures",
        "auth.change_user",
        "auth.add_user",
        "auth.change_group",
        "mailings.delete_mailingauditentry",
        "mailings.change_delivery",
    }
    assert not granted & forbidden


def test_making_the_group_with_the_real_app_registry_leaves_the_registry_as_it_was():
    # It once left every app without models_module, so that after any later test's flush
    # post_migrate made no permissions at all, and a staff user's rights came to nothing.
    before = {config.label: config.models_module for config in apps.get_app_configs()}
    CREATE_GROUP.create_campaigner_group(apps, None)
    assert {config.label: config.models_module for config in apps.get_app_configs()} == before


def test_the_role_as_migrated_is_the_role_as_written():
    assert LATEST_ROLE.CAMPAIGNER_PERMISSIONS == CAMPAIGNER_PERMISSIONS, (
        "config/lib/roles.py changed the Campaigner role: add a migration that grants it"
    )


def test_a_campaigner_cannot_reach_users_exports_or_deleting_supporters(campaigner_client):
    supporter = Supporter.objects.first()
    petition_id = Mailing.objects.get().petition_id
    for url in [
        "/admin/auth/user/",
        "/admin/auth/group/",
        f"/admin/supporters/supporter/{supporter.pk}/delete/",
        f"/admin/campaigns/petition/{petition_id}/export.csv",
        f"/admin/campaigns/petition/{petition_id}/printable/",
    ]:
        assert campaigner_client.get(url).status_code == 403, url
    campaigner_client.post(f"/admin/supporters/supporter/{supporter.pk}/delete/", {"post": "yes"})
    assert Supporter.objects.filter(pk=supporter.pk).exists()
    assert campaigner_client.get("/admin/mailings/mailingauditentry/").status_code == 200


def test_without_the_send_permission_there_is_no_send_action_and_a_forged_one_does_nothing(
    client,
):
    mailing = MailingFactory()
    staff_client(client, "view_mailing", "change_mailing")
    page = client.get("/admin/mailings/mailing/").content.decode()
    assert "send_now" not in page and 'value="pause"' not in page
    client.post(
        "/admin/mailings/mailing/", {"action": "send_now", "_selected_action": [mailing.pk]}
    )
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT
    assert not MailingAuditEntry.objects.exists()


def test_without_the_control_permission_a_forged_pause_does_nothing(client):
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    staff_client(client, "view_mailing", "change_mailing", "send_mailing")
    page = client.get("/admin/mailings/mailing/").content.decode()
    assert 'value="send_now"' in page and 'value="pause"' not in page
    client.post("/admin/mailings/mailing/", {"action": "pause", "_selected_action": [mailing.pk]})
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENDING


def test_the_audit_log_records_who_sent_and_to_how_many(campaigner_client):
    mailing = Mailing.objects.get()
    audience = Supporter.objects.filter(status="subscribed").exclude(
        signatures__petition=mailing.petition
    )
    send_url = f"/admin/mailings/mailing/{mailing.pk}/send/"
    campaigner_client.post(send_url, confirmation_fields(campaigner_client, send_url))
    entry = MailingAuditEntry.objects.get(action=Action.SENT)
    assert (entry.actor_name, entry.mailing, entry.recipient_count) == (
        "campaigner",
        mailing,
        audience.count(),
    )
    assert str(entry).startswith("campaigner: sent")


def test_pause_resume_and_cancel_are_recorded_with_who_did_them():
    mailing = MailingFactory(status=Mailing.Status.SENDING)
    user = User.objects.create_user("ann")
    assert mailing_pause(mailing_id=mailing.pk, actor=user)
    assert mailing_resume(mailing_id=mailing.pk, actor=user)
    assert mailing_pause(mailing_id=mailing.pk, reason="Too many complaints")  # the breaker
    assert mailing_cancel(mailing_id=mailing.pk, actor=user)
    assert not mailing_cancel(mailing_id=mailing.pk, actor=user)  # nothing happened: no entry
    entries = list(
        MailingAuditEntry.objects.order_by("id").values_list("action", "actor_name", "detail")
    )
    assert entries == [
        (Action.PAUSED, "ann", ""),
        (Action.RESUMED, "ann", ""),
        (Action.PAUSED, "", "Too many complaints"),
        (Action.CANCELLED, "ann", ""),
    ]


def test_creating_and_editing_in_the_admin_is_recorded(campaigner_client):
    mailing = Mailing.objects.get()
    data = {
        "campaign": mailing.campaign_id, "petition": mailing.petition_id, "name": "New appeal",
        "subject": "Hi {{ first_name }}", "preheader": "",
        "sender": "Rally campaigns <campaigns@rally.example>", "html_body": "<p>Hi</p>",
        "text_body": "Hi", "audience_language": "", "audience_country": "",
        "scheduled_at_0": "", "scheduled_at_1": "",
        **MAILING_FORM_NO_VERSIONS,
    }  # fmt: skip
    assert campaigner_client.post("/admin/mailings/mailing/add/", data).status_code == 302
    created = Mailing.objects.get(name="New appeal")
    assert created.created_by.username == "campaigner"
    data["subject"] = "Dear {{ first_name }}"
    campaigner_client.post(f"/admin/mailings/mailing/{created.pk}/change/", data)
    entries = list(
        MailingAuditEntry.objects.filter(mailing=created)
        .order_by("id")
        .values_list("action", "detail")
    )
    assert entries == [(Action.CREATED, ""), (Action.EDITED, "subject")]


def test_the_audit_log_is_read_only_in_the_admin(admin_client):
    mailing = MailingFactory()
    SupporterFactory()
    mailing_pause_entry = MailingAuditEntry.objects.create(
        mailing=mailing, mailing_name=mailing.name, action=Action.PAUSED
    )
    assert admin_client.get("/admin/mailings/mailingauditentry/add/").status_code == 403
    url = f"/admin/mailings/mailingauditentry/{mailing_pause_entry.pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert MailingAuditEntry.objects.filter(pk=mailing_pause_entry.pk).exists()


def _outbox_message() -> OutboxMessage:
    return OutboxMessage.objects.create(
        to="olga.petrova@example.org",
        from_email="campaigns@rally.example",
        subject="Olga, sign now",
        text_body="Sign: https://rally.example/petitions/free/?t=personal-token",
        html_body='<a href="https://rally.example/unsubscribe/personal-token/">Unsubscribe</a>',
    )


def test_the_outbox_is_closed_to_staff_without_its_view_permission(client):
    message = _outbox_message()
    campaigner = staff_user(username="another-campaigner")
    # By the role as written: a flushed test database may have lost the migrated group.
    campaigner.groups.add(campaigner_group_ensure(group_model=Group, permission_model=Permission))
    users = {
        "no-permission": staff_user(username="nobody"),
        "campaigner": campaigner,
        "change-only": staff_user("change_outboxmessage", username="changer"),
    }
    for name, user in users.items():
        client.force_login(user)
        for url in (
            "/admin/mailings/outboxmessage/",
            f"/admin/mailings/outboxmessage/{message.pk}/change/",
            f"/admin/mailings/outboxmessage/{message.pk}/delete/",
            f"/admin/mailings/outboxmessage/{message.pk}/history/",
        ):
            response = client.get(url)
            assert response.status_code == 403, (name, url)
            assert "personal-token" not in response.content.decode(), (name, url)
        assert "outboxmessage" not in client.get("/admin/").content.decode(), name
        assert "outboxmessage" not in client.get("/admin/mailings/").content.decode(), name
        client.post(f"/admin/mailings/outboxmessage/{message.pk}/delete/", {"post": "yes"})
        assert OutboxMessage.objects.filter(pk=message.pk).exists(), name


def test_the_outbox_opens_read_only_to_who_may_view_it(client):
    message = _outbox_message()
    staff_client(client, "view_outboxmessage")
    assert client.get("/admin/mailings/outboxmessage/").status_code == 200
    page = client.get(f"/admin/mailings/outboxmessage/{message.pk}/change/").content.decode()
    assert "Olga, sign now" in page and 'name="_save"' not in page
    client.post(
        f"/admin/mailings/outboxmessage/{message.pk}/change/",
        {"to": "x@example.org", "subject": "changed"},
    )
    assert OutboxMessage.objects.get(pk=message.pk).subject == "Olga, sign now"
