"""The report page, report.json and the compare page: contract, chart, permissions, bad input."""

import csv
import io
import itertools
import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from campaigns.models import Signature
from config.lib.roles import CAMPAIGNER_GROUP, campaigner_group_ensure
from mailings.models import Delivery, LinkClick, Mailing, MailingVariant
from mailings.reports.ledger import ledger_counts, report_counters_rebuild
from tests.admin_users import staff_client
from tests.factories import MailingFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db

EspStatus = Delivery.EspStatus
FIGURE_KEYS = (
    "sent", "delivered", "hard_bounces", "soft_bounces", "complaints", "unsubscribes",
    "opens_approximate", "unique_clicks", "signatures",
)  # fmt: skip


def report_url(mailing) -> str:
    return f"/admin/mailings/mailing/{mailing.pk}/report/"


def json_url(mailing) -> str:
    return f"/admin/mailings/mailing/{mailing.pk}/report.json"


def compare_url(query: str) -> str:
    return f"/admin/mailings/report/compare/?{query}"


def sent_mailing(*, name: str, readers: int, signed: int, hours_ago: int = 5, variants=("",)):
    """A mailing sent `hours_ago` to `readers` at gmail.com, with feedback, counted from its
    ledger: every third delivered reader clicked, `signed` of them signed, one complained,
    one hard-bounced, and one unsubscribed through it."""
    started = timezone.now() - timedelta(hours=hours_ago)
    mailing = MailingFactory(
        name=name,
        status=Mailing.Status.SENT,
        started_at=started,
        html_body='<p><a href="{{ petition_url }}">Sign</a> <a href="https://news.example.org/">'
        "Read</a></p>",
    )
    for n in range(readers):
        supporter = SupporterFactory(email=f"{name.lower()}{n}@gmail.com")
        status = EspStatus.DELIVERED
        if n == 1:
            status = EspStatus.COMPLAINED
        elif n == 2:
            status = EspStatus.BOUNCED
        clicked = n % 3 == 0 and status == EspStatus.DELIVERED
        Delivery.objects.create(
            mailing=mailing,
            supporter=supporter,
            status=Delivery.Status.SENT,
            sent_at=started + timedelta(minutes=n),
            esp_status=status,
            esp_status_at=started + timedelta(hours=1),
            variant=variants[n % len(variants)],
            opened_at=started + timedelta(hours=2) if clicked else None,
            clicked_at=started + timedelta(hours=2) if clicked else None,
            unsubscribed_at=started + timedelta(hours=3) if n == 4 else None,
        )
        if clicked:
            LinkClick.objects.create(
                mailing=mailing, supporter=supporter, link_index=0, url="https://x"
            )
        if clicked and n // 3 < signed:
            SignatureFactory(petition=mailing.petition, supporter=supporter, mailing=mailing)
    report_counters_rebuild(mailing_id=mailing.pk)
    return mailing


@pytest.fixture
def mailing():
    return sent_mailing(name="Autumn", readers=30, signed=3)


@pytest.fixture
def other():
    return sent_mailing(name="Winter", readers=12, signed=1, hours_ago=100)


def test_report_json_has_the_contract_keys_with_the_ledger_figures(admin_client, mailing):
    report = admin_client.get(json_url(mailing)).json()

    for key in FIGURE_KEYS:
        assert isinstance(report[key], int), key
    totals = ledger_counts(mailing.pk).totals()
    assert (report["sent"], report["delivered"], report["hard_bounces"]) == (30, 29, 1)
    assert (report["complaints"], report["unsubscribes"], report["signatures"]) == (1, 2, 3)
    assert report["unique_clicks"] == totals["unique_clicks"] == 10
    assert report["opens_approximate"] == totals["opens"] == 10
    assert set(report["per_thousand"]) >= {"signatures", "unsubscribes", "complaints"}
    assert report["per_thousand"]["signatures"] == 100.0
    assert report["per_thousand"]["complaints"] == 33.33
    assert {"links", "by_language", "by_domain", "variants", "ab"} <= set(report)
    assert report["variants"] == [] and report["ab"] is None
    assert report["links"][0] == {
        "index": 0, "url": "{{ petition_url }}", "clicks": 10, "unique_clicks": 10,
    }  # fmt: skip
    assert report["by_domain"][0]["domain"] == "gmail.com"
    assert report["by_domain"][0]["sent"] == 30


def test_report_json_series_is_cumulative_hourly_and_ends_at_the_totals(admin_client, mailing):
    series = admin_client.get(json_url(mailing)).json()["series"]

    assert set(series[0]) == {"at", "delivered", "clicks", "signatures", "unsubscribes"}
    ats = [datetime.fromisoformat(point["at"]) for point in series]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(ats))
    for name in ("delivered", "clicks", "signatures", "unsubscribes"):
        values = [point[name] for point in series]
        assert values == sorted(values), name  # cumulative: never down
    assert (series[0]["delivered"], series[1]["delivered"]) == (0, 29)
    assert series[-1] == {**series[-1], "delivered": 29, "clicks": 10, "signatures": 3}
    assert series[-1]["unsubscribes"] == 2


def test_variants_list_each_variant_with_its_subject_and_the_tests_decision(admin_client):
    tested = sent_mailing(name="Tested", readers=12, signed=2, variants=("A", "B", "C"))
    MailingVariant.objects.create(mailing=tested, label="B", subject="They are still held")
    MailingVariant.objects.create(mailing=tested, label="C", preheader="Only the preheader")
    tested.ab_status = Mailing.ABStatus.DECIDED
    tested.ab_winner = "B"
    tested.ab_decision = {"winner": "B", "metric": "signatures", "confidence": 0.9731}
    tested.save(update_fields=["ab_status", "ab_winner", "ab_decision"])

    report = admin_client.get(json_url(tested)).json()

    variants = report["variants"]
    assert [variant["label"] for variant in variants] == ["A", "B", "C"]
    assert [variant["subject"] for variant in variants] == [
        tested.subject, "They are still held", tested.subject,
    ]  # fmt: skip
    assert [variant["sent"] for variant in variants] == [4, 4, 4]
    assert sum(variant["signatures"] for variant in variants) == 2
    assert {"unique_clicks", "signatures"} <= set(variants[0])
    assert report["ab"] == {
        "status": "decided", "metric": "signatures", "winner": "B", "confidence": 0.9731,
    }  # fmt: skip
    page = admin_client.get(report_url(tested)).content.decode()
    assert "They are still held" in page and "Decided" in page and "97.3%" in page


def test_the_page_has_an_inline_accessible_chart_and_its_figures_in_a_table(admin_client, mailing):
    page = admin_client.get(report_url(mailing))
    assert page.status_code == 200
    html = page.content.decode()

    svg = re.search(r"<svg role=\"img\" aria-labelledby=\"report-chart-title report-chart-desc\""
                    r".*?</svg>", html, re.DOTALL)[0]  # fmt: skip
    assert '<title id="report-chart-title">' in svg and '<desc id="report-chart-desc">' in svg
    assert svg.count("<polyline") == 4
    assert "<script" not in html.split('id="content-main"')[1]
    assert "29 delivered" in svg  # the description says where the lines end
    assert re.search(r'id="figure-signatures">3<', html)
    assert re.search(r'id="figure-signatures-per-thousand">100.0<', html)
    assert "Opens (approximate)" in html
    assert "The chart's figures as a table" in html
    assert "By mailbox domain" in html and "gmail.com" in html
    assert "By language version" in html


def test_a_mailing_with_nothing_counted_has_a_page_and_zeros(admin_client):
    draft = MailingFactory()

    assert "Nothing counted yet" in admin_client.get(report_url(draft)).content.decode()
    report = admin_client.get(json_url(draft)).json()
    assert all(report[key] == 0 for key in FIGURE_KEYS)
    assert report["series"] == [] and report["per_thousand"]["signatures"] is None


def test_the_change_form_the_progress_page_and_the_list_link_to_the_report(admin_client, mailing):
    change = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()
    progress = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/progress/")
    assert f'href="{report_url(mailing)}"' in change
    assert f'href="{report_url(mailing)}"' in progress.content.decode()
    reports = admin_client.get("/admin/mailings/report/").content.decode()
    assert f'href="{report_url(mailing)}"' in reports


def test_the_list_of_reports_compares_the_mailings_ticked(admin_client, mailing, other):
    response = admin_client.post(
        "/admin/mailings/report/",
        {"action": "compare", "_selected_action": [mailing.pk, other.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == compare_url(f"ids={other.pk},{mailing.pk}")


def test_compare_shows_the_mailings_side_by_side_and_their_signatures_overlaid(
    admin_client, mailing, other
):
    page = admin_client.get(compare_url(f"ids={mailing.pk},{other.pk}"))
    assert page.status_code == 200
    html = page.content.decode()

    assert f'id="compared-{mailing.pk}"' in html and f'id="compared-{other.pk}"' in html
    assert html.index("Autumn") < html.index("Winter")  # in the order asked for
    svg = re.search(r'<svg role="img".*?</svg>', html, re.DOTALL)[0]
    assert svg.count("<polyline") == 2 and "<title" in svg and "<desc" in svg
    assert "by the day" in svg  # Winter was sent 100 hours ago
    assert f"ids={mailing.pk},{other.pk}&amp;format=csv" in html


def test_compare_as_csv_is_a_download_of_the_same_table(admin_client, mailing, other):
    response = admin_client.get(compare_url(f"ids={mailing.pk},{other.pk}&format=csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["name"] for row in rows] == ["Autumn", "Winter"]
    assert (rows[0]["sent"], rows[0]["signatures"], rows[0]["signatures_per_thousand"]) == (
        "30", "3", "100.0",
    )  # fmt: skip
    assert rows[1]["unsubscribes"] == "2" and rows[1]["opens_approximate"] == "4"


def test_a_name_a_spreadsheet_would_run_as_a_formula_is_written_as_text(admin_client):
    formula = sent_mailing(name="=HYPERLINK(1)", readers=3, signed=0)
    response = admin_client.get(compare_url(f"ids={formula.pk}&format=csv"))
    row = next(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["name"] == "'=HYPERLINK(1)"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Choose the mailings to compare"),
        ("ids=", "Choose the mailings to compare"),
        ("ids=,,", "Choose the mailings to compare"),
        ("ids=abc", "“abc” is not one"),
        ("ids=1,x2", "“x2” is not one"),
        ("ids=-1", "“-1” is not one"),
        ("ids=99999999999999999999999", "is not one"),
        ("ids=999999", "No mailing has the id 999999"),
        ("ids=" + ",".join(str(n) for n in range(1, 12)), "at most 10 mailings"),
    ],
)
def test_bad_ids_get_a_clear_message_never_a_500(admin_client, query, message):
    for suffix in ("", "&format=csv"):
        response = admin_client.get(compare_url(query + suffix))
        assert response.status_code == 400
        html = response.content.decode()
        assert message in html
        assert 'id="compare-error"' in html


def test_an_unknown_format_gets_a_clear_message(admin_client, mailing):
    response = admin_client.get(compare_url(f"ids={mailing.pk}&format=xml"))
    assert response.status_code == 400
    assert "The format is html or csv" in response.content.decode()


def test_repeated_ids_are_compared_once(admin_client, mailing):
    response = admin_client.get(compare_url(f"ids={mailing.pk}, {mailing.pk}&format=csv"))
    assert len(list(csv.DictReader(io.StringIO(response.content.decode())))) == 1


@pytest.mark.parametrize("page", ["report", "json", "compare", "compare_csv", "list"])
def test_staff_without_view_mailing_get_403(client, mailing, page):
    staff_client(client, "view_delivery", "add_mailing")
    response = client.get(_page_url(page, mailing))
    assert response.status_code == 403


@pytest.mark.parametrize("page", ["report", "json", "compare", "compare_csv", "list"])
def test_a_campaigner_may_read_every_report(client, mailing, page):
    campaigner_group_ensure(group_model=Group, permission_model=Permission)
    user = User.objects.create_user("campaigner", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=CAMPAIGNER_GROUP))
    client.force_login(user)
    assert client.get(_page_url(page, mailing)).status_code == 200


@pytest.mark.parametrize("page", ["report", "json", "compare"])
def test_anonymous_visitors_are_sent_to_log_in(client, mailing, page):
    response = client.get(_page_url(page, mailing))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_reports_list_changes_nothing(admin_client, mailing):
    # No add, change or delete: a report's own page is the mailing's report.
    assert admin_client.get("/admin/mailings/report/add/").status_code == 403
    response = admin_client.get(f"/admin/mailings/report/{mailing.pk}/change/")
    assert response.status_code == 302 and response["Location"] == report_url(mailing)
    listing = admin_client.get("/admin/mailings/report/").content.decode()
    assert "delete_selected" not in listing
    assert Signature.objects.filter(mailing=mailing).count() == 3


def _page_url(page: str, mailing) -> str:
    return {
        "report": report_url(mailing),
        "json": json_url(mailing),
        "compare": compare_url(f"ids={mailing.pk}"),
        "compare_csv": compare_url(f"ids={mailing.pk}&format=csv"),
        "list": "/admin/mailings/report/",
    }[page]
