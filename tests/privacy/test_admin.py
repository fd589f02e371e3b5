"""The GDPR buttons on the supporter admin: each behind its own permission; erasure only on a
confirming POST."""

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User

from privacy.admin import PrivacySupporterAdmin
from supporters.models import ConsentRecord, Supporter, SupporterAuditEntry
from supporters.suppression import email_is_suppressed
from tests.privacy.conftest import EMAIL

pytestmark = pytest.mark.django_db


def staff_client(client, *codenames: str):
    user = User.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="supporters", codename__in=codenames)
    )
    client.force_login(user)
    return client


def urls(supporter) -> dict[str, str]:
    base = f"/admin/supporters/supporter/{supporter.pk}"
    return {"change": f"{base}/change/", "data": f"{base}/data.json", "erase": f"{base}/erase/"}


def test_the_supporter_admin_is_the_privacy_one_and_keeps_the_changelist_export():
    registered = admin.site._registry[Supporter]
    assert type(registered) is PrivacySupporterAdmin
    assert "supporters_supporter_export_csv" in {
        url.name for url in registered.get_urls() if getattr(url, "name", None)
    }


def test_change_page_offers_each_tool_only_with_its_permission(client, zelda):
    staff_client(client, "view_supporter")
    page = client.get(urls(zelda)["change"]).content.decode()
    assert "data.json" not in page and "/erase/" not in page

    client.force_login(User.objects.create_superuser("root", password="x"))
    page = client.get(urls(zelda)["change"]).content.decode()
    assert f'href="{urls(zelda)["data"]}">Download this supporter\'s data (JSON)' in page
    assert f'href="{urls(zelda)["erase"]}" class="deletelink">Erase this supporter…' in page


def test_data_download_gives_the_json_file_and_is_audited(client, zelda):
    staff_client(client, "view_supporter", "export_person")
    response = client.get(urls(zelda)["data"])

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="supporter-{zelda.pk}.json"'
    assert json.loads(response.content)["profile"]["email"] == EMAIL
    entry = SupporterAuditEntry.objects.get()
    assert entry.action == SupporterAuditEntry.Action.EXPORTED_PERSON
    assert entry.actor_name == "staff"


def test_data_download_and_erasure_are_refused_without_their_permissions(client, zelda):
    staff_client(client, "view_supporter", "change_supporter", "delete_supporter")
    assert client.get(urls(zelda)["data"]).status_code == 403
    assert client.get(urls(zelda)["erase"]).status_code == 403
    assert client.post(urls(zelda)["erase"]).status_code == 403
    zelda.refresh_from_db()
    assert zelda.email == EMAIL and not SupporterAuditEntry.objects.exists()


def test_erase_page_shows_what_will_be_removed_and_a_get_changes_nothing(client, zelda):
    staff_client(client, "view_supporter", "erase_supporter")
    page = client.get(urls(zelda)["erase"]).content.decode()

    for line in ("Consent records", "Tags", "Deliveries", "Tracking events", "Outbox messages"):
        assert f"<td>{line}</td>" in page
    assert "<td>Signatures</td><td>2</td>" in page
    assert 'value="Yes, erase this supporter"' in page
    zelda.refresh_from_db()
    assert zelda.status == Supporter.Status.SUBSCRIBED
    assert ConsentRecord.objects.filter(supporter=zelda).exists()
    assert not email_is_suppressed(EMAIL)


def test_confirming_post_erases_and_says_so(client, zelda):
    staff_client(client, "view_supporter", "erase_supporter")
    response = client.post(urls(zelda)["erase"], follow=True)

    assert response.redirect_chain[-1][0] == urls(zelda)["change"]
    assert "personal data removed from 11 tables" in response.content.decode()
    zelda.refresh_from_db()
    assert zelda.status == Supporter.Status.ERASED
    assert email_is_suppressed(EMAIL)
    entry = SupporterAuditEntry.objects.get(action=SupporterAuditEntry.Action.ERASED)
    assert entry.actor_name == "staff"
    # Erased, the supporter has no "Erase" button left, and the page says so if asked.
    assert "Erase this supporter…" not in response.content.decode()
    assert "was erased already" in client.get(urls(zelda)["erase"]).content.decode()
