"""A mailing's report agrees with its ledger after a real send and everything that follows it.

Real parts: a Celery worker process (bulk and tracking queues), Redis, the test database, the
fake Postmark API reached by anymail's Postmark backend; webhooks posted to anymail's receiver
as Postmark posts them; clicks through the redirect and the open pixel; signatures through the
public petition page by the personal link the redirect adds; unsubscribes by the one-click
POST of the List-Unsubscribe header. Replays and repeats are among them, and must not count.
"""

import json
import re
from urllib.parse import parse_qs, urlsplit

from django.db.models import Q

from campaigns.models import Signature
from espfakes import FakePostmark
from mailings.models import Delivery, LinkClick, Mailing, MailingVersion, TrackingEvent
from mailings.reports.ledger import ledger_counts, report_counters_rebuild
from mailings.sending import mailing_send
from supporters.models import Supporter
from supporters.tokens import make_unsubscribe_token
from tests.admin_users import staff_client
from tests.factories import MailingFactory, PetitionFactory, SupporterFactory
from tests.mailings.feedback.payloads import ESPS, Message, basic_auth
from tests.processes import wait_for

# Who gets the appeal: English readers at gmail.com and at small domains, Russian readers at
# yandex.ru and mail.ru (who get the Russian version).
AUDIENCE = (
    [("gmail.com", "en")] * 8
    + [("yandex.ru", "ru")] * 6
    + [("mail.ru", "ru")] * 5
    + [("example.org", "en"), ("example.net", "en"), ("example.com", "en")]
)
HTML = (
    '<p>Dear {{ first_name|default:"friend" }},</p>'
    '<p><a href="{{ petition_url }}">Sign</a></p>'
    '<p><a href="https://news.example.org/story">Read</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
TRACKED = re.compile(r'href="(http[^"]*/r/[^"]+/)"')
PIXEL = re.compile(r'<img src="(http[^"]*/o/[^"]+\.gif)"')
UNSUBSCRIBE = re.compile(r"<(https?://[^>]+)>")

# The equivalent ledger query of each figure of report.json: rows of the mailing's deliveries,
# clicks or signatures, each counted once.
LEDGER_QUERIES = {
    "sent": Q(status="sent"),
    "delivered": Q(esp_status__in=["delivered", "complained"]),
    "hard_bounces": Q(esp_status="bounced"),
    "soft_bounces": Q(esp_status="soft_bounced"),
    "complaints": Q(esp_status="complained"),
    "unsubscribes": Q(unsubscribed_at__isnull=False) | Q(esp_status="complained"),
    "opens_approximate": Q(opened_at__isnull=False),
    "unique_clicks": Q(clicked_at__isnull=False),
}


def ledger_figures(mailing) -> dict[str, int]:
    deliveries = Delivery.objects.filter(mailing=mailing)
    figures = {name: deliveries.filter(query).count() for name, query in LEDGER_QUERIES.items()}
    figures["signatures"] = Signature.objects.filter(mailing=mailing).count()
    figures["clicks"] = LinkClick.objects.filter(mailing=mailing).count()
    return figures


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_the_report_equals_the_ledger_after_a_send_and_its_aftermath(celery_worker_factory, client):
    petition = PetitionFactory(slug="free-them")
    mailing = MailingFactory(petition=petition, campaign=petition.campaign, html_body=HTML)
    MailingVersion.objects.create(
        mailing=mailing, language="ru", subject="Подпишите", html_body=HTML, text_body=""
    )
    readers = [
        SupporterFactory(email=f"reader{n:02d}@{domain}", language=language, first_name=f"R{n}")
        for n, (domain, language) in enumerate(AUDIENCE)
    ]

    with FakePostmark() as esp:
        worker = celery_worker_factory(
            EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
            ANYMAIL=json.dumps(esp.anymail_settings()),
            RALLY_SEND_BATCH_SIZE="4",
            RALLY_SEND_PARALLELISM="2",
        )
        mailing_send(mailing=mailing)
        wait_for(
            lambda: Mailing.objects.filter(pk=mailing.pk, status=Mailing.Status.SENT).exists(),
            timeout=90,
            message=lambda: f"mailing not sent; worker log:\n{worker.log()[-3000:]}",
        )
        sent = {message["recipient"]: message for message in esp.messages()}
    assert len(sent) == len(readers)
    deliveries = {
        delivery.supporter.email: delivery
        for delivery in Delivery.objects.filter(mailing=mailing).select_related("supporter")
    }

    serials = iter(range(1, 1000))

    def webhook(reader, kind, serial=None):
        """Post an event; each a new one (Postmark's bounce ids differ), unless `serial` repeats."""
        serial = next(serials) if serial is None else serial
        delivery = deliveries[reader.email]
        message = Message(
            email=reader.email,
            message_id=delivery.esp_message_id,
            metadata={"delivery_id": str(delivery.pk), "mailing_id": str(mailing.pk)},
            serial=serial,
        )
        post = ESPS["postmark"](kind, message)
        response = client.generic(
            "POST", post.path, post.body.encode(), content_type=post.content_type, **basic_auth()
        )
        assert response.status_code == 200

    # What the ESP reports: most delivered; two hard bounces; a soft bounce of a message it
    # had reported delivered (no longer delivered, as the ledger says); two complaints after
    # delivery, one followed by a late "delivered" that changes nothing; a replayed event;
    # a click Postmark tracked itself.
    for reader in readers[:18]:
        webhook(reader, "delivered", serial=0)
    webhook(readers[0], "delivered", serial=0)  # the very same event again: stored once
    webhook(readers[18], "hard_bounce")
    webhook(readers[19], "hard_bounce")
    webhook(readers[17], "soft_bounce")
    webhook(readers[20], "soft_bounce")
    webhook(readers[10], "complaint")
    webhook(readers[11], "complaint")
    webhook(readers[11], "delivered")
    webhook(readers[12], "click")

    # What readers do: clicks (a second click, a second link), opens (one twice), signatures
    # through the personal link, and unsubscribes by the header's one-click POST.
    def links_of(reader):
        return TRACKED.findall(sent[reader.email]["html"])

    def follow(url):
        response = client.get(path_of(url))
        assert response.status_code == 302
        return response["Location"]

    petition_links = {}
    for reader in readers[:3]:
        for url in links_of(reader):
            destination = follow(url)
            if "/petitions/free-them/" in destination:
                petition_links[reader.email] = destination
    follow(links_of(readers[0])[0])  # a second click of the same link
    follow(links_of(readers[13])[1])  # a reader of the Russian version
    for reader in (readers[3], readers[4], readers[4], readers[14]):
        pixel = PIXEL.search(sent[reader.email]["html"])[1]
        assert client.get(path_of(pixel)).status_code == 200
    for reader in (readers[0], readers[1], readers[0]):  # the first signs twice
        page = urlsplit(petition_links[reader.email])
        token = parse_qs(page.query)["t"][0]
        response = client.post(page.path, {"t": token})
        assert response.status_code == 302, response.content[:500]
    for reader in (readers[5], readers[5], readers[15], readers[10]):
        header = sent[reader.email]["headers"]["List-Unsubscribe"][0]
        one_click = UNSUBSCRIBE.search(header)[1]
        response = client.post(
            path_of(one_click), {"List-Unsubscribe": "One-Click"}, HTTP_USER_AGENT="Gmail"
        )
        assert response.status_code == 200
    # A link made before links named their mailing unsubscribes, but credits no mailing.
    old_link = f"/unsubscribe/{make_unsubscribe_token(readers[6].pk)}/"
    assert client.post(old_link).status_code == 200

    wait_for(
        lambda: not TrackingEvent.objects.filter(processed_at__isnull=True).exists(),
        timeout=60,
        message=lambda: f"events unprocessed; worker log:\n{worker.log()[-3000:]}",
    )
    worker.stop()

    staff_client(client, "view_mailing", username="reader")
    report = client.get(f"/admin/mailings/mailing/{mailing.pk}/report.json").json()
    ledger = ledger_figures(mailing)
    for figure, count in ledger.items():
        assert report[figure] == count, figure
    # The scenario above, figure by figure: the ledger holds what was meant to happen.
    assert ledger == {
        "sent": 22,
        "delivered": 17,  # 18 reported, one soft-bounced since; complaints are delivered too
        "hard_bounces": 2,
        "soft_bounces": 2,
        "complaints": 2,
        "unsubscribes": 4,  # 5 and 15 by the header, 10 and 11 by complaint (10 by both)
        "opens_approximate": 7,  # 0, 1, 2 and 13 clicked, 3, 4 and 14 loaded the pixel
        "unique_clicks": 5,  # 0, 1, 2 and 13 through the redirect, 12 tracked by Postmark
        "signatures": 2,
        "clicks": 8,
    }
    assert TrackingEvent.objects.count() == 26  # the replay was stored once
    assert Supporter.objects.get(pk=readers[6].pk).status == Supporter.Status.UNSUBSCRIBED
    assert not Delivery.objects.filter(supporter=readers[6], unsubscribed_at__isnull=False).exists()

    assert report["per_thousand"]["signatures"] == round(2 * 1000 / 22, 2)
    last = report["series"][-1]
    assert (last["delivered"], last["clicks"], last["signatures"], last["unsubscribes"]) == (
        17, 5, 2, 4,
    )  # fmt: skip
    assert [link["clicks"] for link in report["links"]] == [4, 4]
    assert [link["unique_clicks"] for link in report["links"]] == [3, 4]

    # The breakdowns equal the ledger's, counted from it directly.
    counted = ledger_counts(mailing.pk)
    by_language = {row["language"]: row for row in report["by_language"]}
    assert set(by_language) == {"", "ru"}
    for (dimension, key), figures in counted.breakdowns.items():
        if dimension == "language":
            assert by_language[key]["sent"] == figures["sent"]
            assert by_language[key]["signatures"] == figures["signatures"]
            assert by_language[key]["unsubscribes"] == figures["unsubscribes"]
    assert by_language["ru"]["sent"] == 11 and by_language["ru"]["unique_clicks"] == 2
    by_domain = {row["label"]: row for row in report["by_domain"]}
    assert list(by_domain) == ["gmail.com", "yandex.ru", "mail.ru", "Other domains"]
    assert by_domain["gmail.com"]["signatures"] == 2
    assert by_domain["mail.ru"]["hard_bounces"] == 1
    assert by_domain["Other domains"]["sent"] == 3
    assert by_domain["Other domains"]["hard_bounces"] == 1
    assert by_domain["Other domains"]["soft_bounces"] == 1
    assert report["variants"] == [] and report["ab"] is None

    # Counted again from the ledger, the counters come out the same.
    before = {key: value for key, value in report.items() if key != "series"}
    report_counters_rebuild(mailing_id=mailing.pk)
    rebuilt = client.get(f"/admin/mailings/mailing/{mailing.pk}/report.json").json()
    assert {key: value for key, value in rebuilt.items() if key != "series"} == before
