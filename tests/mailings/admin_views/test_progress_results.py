"""A mailing's results on its progress page and in progress.json: ESP outcomes, opens, clicks."""

import re

import pytest
from django.utils import timezone

from campaigns.models import Signature
from mailings.models import Delivery, LinkClick, Mailing
from mailings.reports.ledger import report_counters_rebuild
from mailings.selectors import mailing_results
from tests.factories import MailingFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db

EspStatus = Delivery.EspStatus


@pytest.fixture
def sent_mailing():
    """A sent mailing of 10: 6 delivered, 1 complaint, 2 hard and 1 soft bounce; 4 opened, 2
    clicked (three clicks: two on the petition link by both, one on the news link), 1 signed.
    """
    mailing = MailingFactory(
        status=Mailing.Status.SENT,
        html_body='<p><a href="{{ petition_url }}">Sign</a> '
        '<a href="https://news.example.org/">Read</a></p>',
    )
    statuses = [EspStatus.DELIVERED] * 6 + [EspStatus.COMPLAINED] + [EspStatus.BOUNCED] * 2
    statuses += [EspStatus.SOFT_BOUNCED]
    now = timezone.now()
    deliveries = [
        Delivery.objects.create(
            mailing=mailing,
            supporter=SupporterFactory(),
            status=Delivery.Status.SENT,
            sent_at=now,
            esp_status=status,
            opened_at=now if number < 4 else None,
            clicked_at=now if number < 2 else None,
        )
        for number, status in enumerate(statuses)
    ]
    # Not sent: counts in nothing.
    Delivery.objects.create(mailing=mailing, supporter=SupporterFactory())
    for delivery, index in ((deliveries[0], 0), (deliveries[1], 0), (deliveries[0], 1)):
        LinkClick.objects.create(
            mailing=mailing, supporter=delivery.supporter, link_index=index, url="https://x"
        )
    SignatureFactory(petition=mailing.petition, supporter=deliveries[0].supporter, mailing=mailing)
    SignatureFactory(petition=mailing.petition)  # not credited to it
    # Rows made here, not by the writers that keep the report's counters: count them so.
    report_counters_rebuild(mailing_id=mailing.pk)
    return mailing


def test_results_count_outcomes_opens_clicks_and_signatures_of_the_mailing(sent_mailing):
    results = mailing_results(sent_mailing)
    assert (results.sent, results.delivered, results.hard_bounces, results.soft_bounces) == (
        10, 7, 2, 1,
    )  # fmt: skip
    assert (results.complaints, results.rejected, results.opens) == (1, 0, 4)
    assert (results.unique_clicks, results.clicks, results.signatures) == (2, 3, 1)
    assert [(link.url, link.clicks, link.unique_clicks) for link in results.links] == [
        ("{{ petition_url }}", 2, 2),
        ("https://news.example.org/", 1, 1),
    ]
    assert results.percent_of_sent(results.delivered) == 70.0
    assert results.percent_of_sent(1) == 10.0


def test_the_progress_page_shows_the_results_and_says_opens_are_approximate(
    admin_client, sent_mailing
):
    page = admin_client.get(f"/admin/mailings/mailing/{sent_mailing.pk}/progress/")
    assert page.status_code == 200
    content = page.content.decode()

    def cell(cell_id):
        return re.search(rf'id="{cell_id}">([^<]*)<', content)[1]

    assert (cell("result-delivered"), cell("result-delivered-percent")) == ("7", "70.0%")
    assert (cell("result-hard-bounces"), cell("result-complaints")) == ("2", "1")
    assert cell("result-soft-bounces") == "1"
    assert (cell("result-opens"), cell("result-opens-percent")) == ("4", "40.0%")
    assert re.search(r"Opens \(approximate\)</th><td[^>]*>4<", content)
    assert "Apple Mail" in content and "approximate" in cell_text(content, "opens-note")
    assert (cell("result-unique-clicks"), cell("result-signatures")) == ("2", "1")
    assert (cell("link-0-clicks"), cell("link-0-unique"), cell("link-1-clicks")) == ("2", "2", "1")
    assert "https://news.example.org/" in content


def cell_text(content: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}">(.*?)</', content, re.DOTALL)[1]


def test_progress_json_carries_the_results_under_their_own_key(admin_client, sent_mailing):
    figures = admin_client.get(f"/admin/mailings/mailing/{sent_mailing.pk}/progress.json").json()
    assert figures["sent"] == 10  # the existing keys are unchanged
    assert figures["results"] == {
        "delivered": 7,
        "hard_bounces": 2,
        "soft_bounces": 1,
        "complaints": 1,
        "rejected": 0,
        "opens_approximate": 4,
        "unique_clicks": 2,
        "clicks": 3,
        "signatures": 1,
        "links": [
            {"index": 0, "url": "{{ petition_url }}", "clicks": 2, "unique_clicks": 2},
            {"index": 1, "url": "https://news.example.org/", "clicks": 1, "unique_clicks": 1},
        ],
    }


def test_a_mailing_with_nothing_sent_shows_no_results_and_no_rates(admin_client):
    mailing = MailingFactory()
    page = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/progress/").content.decode()
    assert 'id="results"' not in page
    results = mailing_results(mailing)
    assert results.sent == 0 and results.percent_of_sent(0) is None
    assert [link.clicks for link in results.links] == [0]  # the factory's petition link


def test_results_take_the_same_few_queries_however_many_deliveries(
    sent_mailing, django_assert_max_num_queries
):
    mailing_results(sent_mailing)  # compiles the mailing once for this process
    with django_assert_max_num_queries(3):
        mailing_results(sent_mailing)
    assert Signature.objects.filter(mailing=sent_mailing).count() == 1
