"""The admin's import: upload, columns with a preview, a real worker, progress, the report."""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from supporters.imports.services import supporter_import_drafts_expire
from supporters.models import Supporter, SupporterAuditEntry, SupporterImport
from tests.processes import wait_for

CSV = (
    "Электронная почта;Имя;Notes\r\n"
    "anna@example.org;Анна;\r\n"
    'not-an-address;=HYPERLINK("http://evil");\r\n'
    "boris@example.org;Борис;x\r\n"
)
UPLOAD = {"tags": "book fair, autumn", "consent_source": "Book fair stall",
          "consent_wording": "Email me about this campaign", "encoding": ""}  # fmt: skip


def importer(client, *, permitted: bool = True):
    user = User.objects.create_user("importer", password="x", is_staff=True)
    if permitted:
        user.user_permissions.add(Permission.objects.get(codename="import_supporters"))
    client.force_login(user)
    return client


def upload(client, text: str = CSV, **fields):
    file = io.BytesIO(text.encode("utf-8"))
    file.name = "fair.csv"
    return client.post(reverse("admin:supporters_supporterimport_add"),
                       {**UPLOAD, **fields, "file": file})  # fmt: skip


def test_an_import_runs_in_a_worker_and_reports_its_rejected_rows(
    client, celery_worker_factory, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    client = importer(client)
    worker = celery_worker_factory(MEDIA_ROOT=settings.MEDIA_ROOT)

    response = upload(client)
    supporter_import = SupporterImport.objects.get()
    columns_url = reverse("admin:supporters_supporterimport_columns", args=[supporter_import.pk])
    assert response.status_code == 302 and response["Location"] == columns_url
    page = client.get(columns_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Анна" in html and "Борис" in html  # the preview
    assert '<option value="email" selected>' in html  # guessed from "Электронная почта"
    response = client.post(columns_url, {"column_0": "email", "column_1": "first_name",
                                          "column_2": ""})  # fmt: skip
    assert response.status_code == 302

    progress_url = reverse(
        "admin:supporters_supporterimport_progress_json", args=[supporter_import.pk]
    )
    progress = wait_for(
        lambda: (data := client.get(progress_url).json())["finished"] and data,
        timeout=60,
        message=lambda: f"import not finished; worker log:\n{worker.log()[-3000:]}",
    )
    assert (progress["status"], progress["percent"]) == ("done", 100)
    assert (progress["rows"], progress["created"], progress["merged"], progress["rejected"]) == (
        3, 2, 0, 1,
    )  # fmt: skip
    assert set(Supporter.objects.values_list("email", "first_name")) == {
        ("anna@example.org", "Анна"), ("boris@example.org", "Борис"),
    }  # fmt: skip
    supporter_import.refresh_from_db()
    assert not supporter_import.file  # the upload is deleted once imported
    assert not list((tmp_path / "media" / "imports").iterdir())
    page = client.get(reverse("admin:supporters_supporterimport_change",
                              args=[supporter_import.pk]))  # fmt: skip
    assert page.status_code == 200 and "rejected rows" in page.content.decode()

    report = client.get(reverse("admin:supporters_supporterimport_report",
                                args=[supporter_import.pk]))  # fmt: skip
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == ["line", "reason", "Электронная почта", "Имя", "Notes"]
    assert rows[1][:4] == ["3", rows[1][1], "not-an-address", '\'=HYPERLINK("http://evil")']
    assert rows[1][1].startswith("invalid email")
    assert SupporterAuditEntry.objects.filter(action="import", actor__username="importer").exists()


@pytest.mark.django_db
def test_only_users_with_the_import_permission_see_or_start_an_import(client):
    client = importer(client, permitted=False)
    assert upload(client).status_code == 403
    assert client.get(reverse("admin:supporters_supporterimport_changelist")).status_code == 403
    supporter_import = SupporterImport.objects.create(
        original_name="x.csv", consent_source="x", consent_wording="y", status="done"
    )
    for name in ("progress_json", "report", "columns", "change"):
        url = reverse(f"admin:supporters_supporterimport_{name}", args=[supporter_import.pk])
        assert client.get(url).status_code == 403, name


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "fields", "message"),
    [
        ("", {}, "file is empty"),
        ("\n\n", {}, "The file is empty"),
        ('Email\n"unclosed\n', {"encoding": "utf-16"}, "not valid UTF-16"),
        ("Email\nann@example.org\n", {"tags": " , "}, "at least one tag"),
        ("Email\nann@example.org\n", {"consent_wording": ""}, "This field is required"),
        ("Email\nann@example.org\n", {"encoding": "ebcdic"}, "Select a valid choice"),
    ],
)
def test_a_bad_upload_is_refused_with_a_message_and_nothing_stored(
    client, settings, tmp_path, text, fields, message
):
    settings.MEDIA_ROOT = str(tmp_path)
    response = upload(importer(client), text, **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not SupporterImport.objects.exists() and not list(tmp_path.iterdir())


@pytest.mark.django_db
def test_columns_without_an_email_are_refused_and_nothing_is_queued(client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    client = importer(client)
    upload(client, "Name;Phone\r\nAnn;1\r\n")
    supporter_import = SupporterImport.objects.get()
    columns_url = reverse("admin:supporters_supporterimport_columns", args=[supporter_import.pk])

    response = client.post(columns_url, {"column_0": "first_name", "column_1": ""})

    assert response.status_code == 200
    assert "No column holds the email address" in response.content.decode()
    supporter_import.refresh_from_db()
    assert supporter_import.status == "draft"
    # Twice the same field is refused too, and a tampered choice is a form error, not a 500.
    response = client.post(columns_url, {"column_0": "email", "column_1": "email"})
    assert "More than one column is mapped to email" in response.content.decode()
    response = client.post(columns_url, {"column_0": "password", "column_1": ""})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


@pytest.mark.django_db
def test_deleting_a_draft_import_deletes_its_upload(client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    client = importer(client)  # the import permission alone lets them delete an import
    upload(client)
    supporter_import = SupporterImport.objects.get()
    assert list((tmp_path / "imports").iterdir())

    url = reverse("admin:supporters_supporterimport_delete", args=[supporter_import.pk])
    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not SupporterImport.objects.exists() and not list((tmp_path / "imports").iterdir())


@pytest.mark.django_db
def test_an_upload_nobody_imports_is_deleted_after_a_day(client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    client = importer(client)
    for _ in range(3):
        upload(client)
    stale, fresh, started = SupporterImport.objects.order_by("pk")
    day_ago = timezone.now() - timedelta(hours=settings.RALLY_IMPORT_DRAFT_HOURS, minutes=1)
    SupporterImport.objects.filter(pk__in=[stale.pk, started.pk]).update(created_at=day_ago)
    SupporterImport.objects.filter(pk=started.pk).update(status="queued")

    assert supporter_import_drafts_expire() == 1

    stale.refresh_from_db()
    assert (stale.status, stale.file.name) == ("failed", "")
    assert "upload the file again" in stale.error and stale.finished_at is not None
    kept = {path.name for path in (tmp_path / "imports").iterdir()}
    assert kept == {Path(fresh.file.name).name, Path(started.file.name).name}
    assert supporter_import_drafts_expire() == 0  # safe twice


@pytest.mark.django_db
@pytest.mark.parametrize("import_id", ["x", "1/2", "%00", "a" * 300])
def test_an_import_page_address_that_is_not_a_number_is_a_404(client, import_id):
    importer(client)
    assert client.get(f"/admin/supporters/supporterimport/{import_id}/change/").status_code == 404
