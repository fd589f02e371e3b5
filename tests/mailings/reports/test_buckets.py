"""The report's counters follow the ledger through every kind of change, and count each once."""

import io
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from campaigns.models import Signature
from campaigns.signing import SignatureInput, signature_create
from mailings.feedback import processing
from mailings.feedback.processing import tracking_events_process
from mailings.links.services import delivery_open_record, link_click_record
from mailings.models import REPORT_FIGURES, Delivery, ReportBreakdown, ReportHour, TrackingEvent
from mailings.report_figures import hour_of
from mailings.reports.ledger import ledger_counts, report_counters_rebuild
from mailings.reports.selectors import HOURLY_POINTS, _series
from supporters.models import Supporter
from supporters.services import supporter_unsubscribe
from supporters.tokens import make_unsubscribe_token, read_unsubscribe_link
from tests.factories import DeliveryFactory, MailingFactory, SupporterFactory
from tests.mailings.feedback.payloads import ESPS, Message, basic_auth, metadata_for
from tests.processes import wait_for

EspStatus = Delivery.EspStatus


def counters(mailing) -> tuple[dict[str, int], dict[tuple[str, str], dict[str, int]]]:
    """Return the mailing's counters: totals, and each breakdown's non-zero figures."""
    totals = Counter()
    for row in ReportHour.objects.filter(mailing=mailing).values(*REPORT_FIGURES):
        totals.update(row)
    breakdowns = {}
    for row in ReportBreakdown.objects.filter(mailing=mailing).values(
        "dimension", "key", *REPORT_FIGURES
    ):
        figures = {figure: row[figure] for figure in REPORT_FIGURES if row[figure]}
        if figures:
            breakdowns[row["dimension"], row["key"]] = figures
    return {figure: totals[figure] for figure in REPORT_FIGURES}, breakdowns


def assert_counters_equal_the_ledger(mailing):
    counted = ledger_counts(mailing.pk)
    expected_breakdowns = {
        key: {figure: n for figure, n in figures.items() if n}
        for key, figures in counted.breakdowns.items()
    }
    totals, breakdowns = counters(mailing)
    assert totals == counted.totals()
    assert breakdowns == {key: value for key, value in expected_breakdowns.items() if value}


@pytest.fixture
def mailing():
    """A mailing sent to four readers at two domains, one with the Russian version, counted."""
    mailing = MailingFactory(started_at=timezone.now() - timedelta(hours=2))
    for n, email in enumerate(["a@gmail.com", "b@gmail.com", "c@mail.ru", "d@mail.ru"]):
        DeliveryFactory(
            mailing=mailing,
            supporter=SupporterFactory(email=email),
            esp_message_id=f"message-{n}",
            version_language="ru" if n == 3 else "",
        )
    report_counters_rebuild(mailing_id=mailing.pk)
    return mailing


def delivery(mailing, email):
    return Delivery.objects.select_related("supporter").get(mailing=mailing, supporter__email=email)


def process(client, mailing, *events):
    """Post Postmark's events about (email, kind[, serial]) and process them as one batch."""
    before = set(TrackingEvent.objects.values_list("pk", flat=True))
    for email, kind, *serial in events:
        row = delivery(mailing, email)
        post = ESPS["postmark"](
            kind,
            Message(email, row.esp_message_id, metadata_for(row), serial[0] if serial else 0),
        )
        response = client.generic(
            "POST", post.path, post.body.encode(), content_type=post.content_type, **basic_auth()
        )
        assert response.status_code == 200
    new = TrackingEvent.objects.exclude(pk__in=before).values_list("pk", flat=True)
    return tracking_events_process(event_pks=sorted(new))


@pytest.mark.django_db
def test_each_kind_of_event_moves_the_counters_as_it_moves_the_ledger(client, mailing):
    process(client, mailing, *[(e, "delivered") for e in ("a@gmail.com", "b@gmail.com")])
    assert_counters_equal_the_ledger(mailing)
    assert counters(mailing)[0]["delivered"] == 2

    # Delivered, then soft-bounced: no longer delivered. A delivery and a hard bounce of one
    # message in one batch: the bounce wins, and only it counts.
    process(
        client, mailing,
        ("a@gmail.com", "soft_bounce", 1), ("c@mail.ru", "delivered", 2),
        ("c@mail.ru", "hard_bounce", 3), ("b@gmail.com", "complaint", 4),
        ("b@gmail.com", "delivered", 5), ("d@mail.ru", "click", 6),
    )  # fmt: skip
    assert_counters_equal_the_ledger(mailing)
    totals = counters(mailing)[0]
    assert (totals["delivered"], totals["soft_bounces"], totals["hard_bounces"]) == (1, 1, 1)
    assert (totals["complaints"], totals["unsubscribes"], totals["unique_clicks"]) == (1, 1, 1)

    # The same events again (an ESP's retry): stored once, counted once.
    assert process(client, mailing, ("c@mail.ru", "hard_bounce", 3)) == {}
    assert_counters_equal_the_ledger(mailing)

    # Several events about one message in one batch, each kind on top of what is there.
    process(
        client, mailing,
        ("a@gmail.com", "click", 7), ("a@gmail.com", "click", 8), ("d@mail.ru", "delivered", 9),
        ("d@mail.ru", "soft_bounce", 10), ("d@mail.ru", "delivered", 11),
    )  # fmt: skip
    assert_counters_equal_the_ledger(mailing)
    totals = counters(mailing)[0]
    assert (totals["unique_clicks"], totals["soft_bounces"], totals["delivered"]) == (2, 2, 1)


@pytest.mark.django_db
def test_clicks_opens_and_repeats_count_once_per_reader_and_link(mailing):
    reader = delivery(mailing, "a@gmail.com")
    for link_index in (0, 0, 1):  # a double click, then another link
        link_click_record(
            mailing_id=mailing.pk, supporter_id=reader.supporter_id, link_index=link_index,
            url="https://example.org/",
        )  # fmt: skip
    assert delivery_open_record(mailing_id=mailing.pk, supporter_id=reader.supporter_id) is False
    other = delivery(mailing, "c@mail.ru")
    assert delivery_open_record(mailing_id=mailing.pk, supporter_id=other.supporter_id)
    assert not delivery_open_record(mailing_id=mailing.pk, supporter_id=other.supporter_id)
    # A click by someone the mailing was never sent to (a forwarded link): a click, no reader.
    stranger = SupporterFactory()
    link_click_record(
        mailing_id=mailing.pk, supporter_id=stranger.pk, link_index=1, url="https://x.org/"
    )

    assert_counters_equal_the_ledger(mailing)
    totals, breakdowns = counters(mailing)
    assert (totals["clicks"], totals["unique_clicks"], totals["opens"]) == (4, 1, 2)
    assert breakdowns["link", "0"] == {"clicks": 2, "unique_clicks": 1}
    assert breakdowns["link", "1"] == {"clicks": 2, "unique_clicks": 2}
    assert breakdowns["domain", "gmail.com"]["unique_clicks"] == 1


@pytest.mark.django_db
def test_an_unsubscribe_by_the_mailings_link_counts_once_and_old_links_credit_nothing(mailing):
    reader = delivery(mailing, "d@mail.ru")
    token = make_unsubscribe_token(reader.supporter_id, mailing.pk)
    link = read_unsubscribe_link(token)
    assert (link.supporter_id, link.mailing_id) == (reader.supporter_id, mailing.pk)
    assert read_unsubscribe_link(token.replace(f"-{mailing.pk}:", f"-{mailing.pk + 1}:")) is None

    assert supporter_unsubscribe(supporter_id=link.supporter_id, mailing_id=link.mailing_id)
    assert not supporter_unsubscribe(supporter_id=link.supporter_id, mailing_id=mailing.pk)
    old = read_unsubscribe_link(make_unsubscribe_token(delivery(mailing, "c@mail.ru").supporter_id))
    assert old.mailing_id is None
    supporter_unsubscribe(supporter_id=old.supporter_id, mailing_id=old.mailing_id)
    # A mailing the supporter was never sent: nothing to credit.
    outsider = SupporterFactory()
    assert supporter_unsubscribe(supporter_id=outsider.pk, mailing_id=mailing.pk)

    assert_counters_equal_the_ledger(mailing)
    totals, breakdowns = counters(mailing)
    assert totals["unsubscribes"] == 1
    assert breakdowns["language", "ru"]["unsubscribes"] == 1
    assert Supporter.objects.filter(status=Supporter.Status.UNSUBSCRIBED).count() == 3


@pytest.mark.django_db
def test_a_report_that_fails_to_count_never_fails_an_unsubscribe_or_a_signature(
    mailing, monkeypatch, caplog
):
    def broken(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")  # the transaction's error, contained

    monkeypatch.setattr("mailings.reports.receivers.delivery_unsubscribe_record", broken)
    monkeypatch.setattr("mailings.reports.receivers.report_signatures_count", broken)
    reader = delivery(mailing, "a@gmail.com")
    caplog.set_level(logging.ERROR, logger="mailings.reports.receivers")

    assert supporter_unsubscribe(supporter_id=reader.supporter_id, mailing_id=mailing.pk)
    outcome = signature_create(
        petition=mailing.petition,
        signer=SignatureInput(email="new@gmail.com", first_name="N", last_name="W"),
        mailing_id=mailing.pk,
    )

    assert Supporter.objects.get(pk=reader.supporter_id).status == Supporter.Status.UNSUBSCRIBED
    assert outcome.created and Signature.objects.filter(mailing=mailing).count() == 1
    assert "did not count the unsubscribe" in caplog.text
    assert "did not count signatures" in caplog.text


@pytest.mark.django_db
def test_a_signature_by_a_personal_link_counts_under_its_delivery(mailing):
    reader = delivery(mailing, "d@mail.ru")
    for _ in range(2):  # the second signing is a harmless no-op, and counts nothing
        signature_create(
            petition=mailing.petition,
            signer=SignatureInput(email="d@mail.ru", first_name="D", last_name="R"),
            mailing_id=mailing.pk,
            confirmed=True,
        )
    signature_create(
        petition=mailing.petition,
        signer=SignatureInput(email="someone@else.org", first_name="S", last_name="E"),
    )

    assert_counters_equal_the_ledger(mailing)
    totals, breakdowns = counters(mailing)
    assert totals["signatures"] == 1
    assert breakdowns["language", "ru"]["signatures"] == 1
    assert breakdowns["domain", "mail.ru"]["signatures"] == 1
    assert reader.supporter.signatures.get().mailing_id == mailing.pk


@pytest.mark.django_db
def test_an_event_dated_in_the_future_counts_in_the_hour_it_was_heard(client, mailing):
    before = hour_of(timezone.now())
    far_ahead = 3 * 365 * 24 * 3600  # seconds after the payloads' own date
    process(client, mailing, ("a@gmail.com", "delivered", far_ahead))
    after = hour_of(timezone.now())
    hours = [row.hour for row in ReportHour.objects.filter(mailing=mailing, delivered__gt=0)]
    assert len(hours) == 1 and hours[0] in (before, after)


@pytest.mark.django_db
def test_without_report_buckets_nothing_is_counted(client, mailing, settings):
    settings.RALLY_REPORT_BUCKETS = False
    before = counters(mailing)
    process(client, mailing, ("a@gmail.com", "delivered"), ("b@gmail.com", "complaint", 1))
    reader = delivery(mailing, "c@mail.ru")
    link_click_record(
        mailing_id=mailing.pk, supporter_id=reader.supporter_id, link_index=0, url="https://x/"
    )
    assert counters(mailing) == before
    assert Delivery.objects.filter(mailing=mailing, esp_status=EspStatus.COMPLAINED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_batches_changing_one_delivery_at_once_count_it_once(client, monkeypatch):
    """Batch A has read the delivery and not yet changed it when batch B, about the same
    delivery, starts: B must wait for A (the rows are locked when read), or both would count
    the change from the state they read and the delivery be counted delivered twice."""
    mailing = MailingFactory()
    row = DeliveryFactory(mailing=mailing, supporter=SupporterFactory(email="a@gmail.com"))
    report_counters_rebuild(mailing_id=mailing.pk)
    events = []
    for kind, serial in (("delivered", 0), ("complaint", 1)):
        post = ESPS["postmark"](
            kind, Message("a@gmail.com", row.esp_message_id, metadata_for(row), serial)
        )
        client.generic(
            "POST", post.path, post.body.encode(), content_type=post.content_type, **basic_auth()
        )
        events.append(TrackingEvent.objects.latest("pk").pk)

    a_has_read, a_may_go_on, b_done = threading.Event(), threading.Event(), threading.Event()
    apply = processing._apply

    def apply_after_b(applied, *, now):
        if threading.current_thread().name == "A":
            a_has_read.set()
            a_may_go_on.wait(timeout=30)
        return apply(applied, now=now)

    monkeypatch.setattr(processing, "_apply", apply_after_b)
    failures, b_backend = [], []

    def work(event_pk):
        try:
            connection.ensure_connection()
            if connection.vendor == "postgresql":
                b_backend.append(connection.connection.info.backend_pid)
            tracking_events_process(event_pks=[event_pk])
        except Exception as error:  # noqa: BLE001 -- reported below
            failures.append(error)
        finally:
            if threading.current_thread().name == "B":
                b_done.set()
            connection.close()

    a = threading.Thread(target=work, args=(events[0],), name="A")
    a.start()
    assert a_has_read.wait(timeout=30)
    b_backend.clear()
    b = threading.Thread(target=work, args=(events[1],), name="B")
    b.start()
    # A goes on once B is done, or waits on a lock (on SQLite B cannot begin while A writes).
    wait_for(
        lambda: b_done.is_set() or _waits_on_a_lock(b_backend),
        timeout=30,
        message="batch B neither finished nor waited",
    )
    a_may_go_on.set()
    a.join()
    b.join()

    assert not failures
    assert_counters_equal_the_ledger(mailing)
    assert counters(mailing)[0]["delivered"] == 1


def _waits_on_a_lock(backend: list[int]) -> bool:
    if connection.vendor != "postgresql":
        return True
    if not backend:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [backend[0]]
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def test_the_series_is_hourly_for_three_days_then_daily_and_ends_with_the_totals():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    figures = len(REPORT_FIGURES)
    delivered = REPORT_FIGURES.index("delivered")

    def hour(offset_hours, amount):
        amounts = [0] * figures
        amounts[delivered] = amount
        return (start + timedelta(hours=offset_hours), *amounts)

    # An ESP clock ahead of ours dated one before the start; the last is ten days on.
    hours = [hour(-1, 5), hour(0, 10), hour(71, 1), hour(72, 1), hour(240, 1)]
    series = _series(start, hours)

    assert len(series) == HOURLY_POINTS + 8  # days 4 to 11: day 11 holds hour 240
    assert series[0].at == start + timedelta(hours=1) and series[0].delivered == 15
    assert series[HOURLY_POINTS - 1].at == start + timedelta(hours=72)
    assert series[HOURLY_POINTS - 1].delivered == 16
    assert series[HOURLY_POINTS].at == start + timedelta(hours=96)
    assert series[HOURLY_POINTS].delivered == 17
    assert series[-1].delivered == 18 and series[-2].delivered == 17
    assert _series(start, []) == [] and _series(None, hours) == []


@pytest.mark.django_db
def test_the_rebuild_command_counts_named_mailings_or_all_again(mailing):
    ReportHour.objects.all().delete()
    ReportBreakdown.objects.all().delete()
    out = io.StringIO()
    call_command("mailing_report_rebuild", str(mailing.pk), stdout=out)
    assert "4 sent" in out.getvalue()
    assert_counters_equal_the_ledger(mailing)
    call_command("mailing_report_rebuild", "--all", stdout=io.StringIO())
    assert_counters_equal_the_ledger(mailing)
    with pytest.raises(CommandError, match="no mailing with id 999999"):
        call_command("mailing_report_rebuild", "999999", stdout=io.StringIO())
    with pytest.raises(CommandError, match="or give --all"):
        call_command("mailing_report_rebuild", stdout=io.StringIO())
