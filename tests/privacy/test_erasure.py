"""Erasure (GDPR art. 17): no trace of the person left in any table, counts kept, never back
by import, mail or link; only a fresh signature of their own makes a new supporter."""

import re
import subprocess

import pytest
from django.db import connection

from campaigns.links import make_petition_token
from campaigns.models import Signature
from mailings.models import Delivery, LinkClick, MailingAuditEntry, OutboxMessage, TrackingEvent
from mailings.selectors import mailing_audience
from privacy.services import email_erase, supporter_erase
from supporters.models import (
    ConsentRecord,
    Engagement,
    Supporter,
    SupporterAuditEntry,
    SupporterImportRejection,
)
from supporters.suppression import email_is_suppressed
from tests.factories import MailingFactory, PetitionFactory, SupporterFactory
from tests.privacy.conftest import EMAIL, LAST_NAME, POSTCODE

# What must not survive erasure anywhere: the address in each spelling text may quote it,
# the distinctive surname, the postcode, and the ESP's message ids (they lead to its logs).
TRACES = [EMAIL, "zelda.quartermaine%40example.org", LAST_NAME, POSTCODE, "pm-0f3c9a7e-zelda"]


def database_dump() -> str:
    """Return every row of the test database as text: pg_dump on PostgreSQL, iterdump on SQLite.

    Committed rows only on PostgreSQL (pg_dump is another session): callers use transactional
    tests.
    """
    if connection.vendor == "sqlite":
        return "\n".join(connection.connection.iterdump())
    db = connection.settings_dict
    result = subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "--no-owner",
            "--host",
            db.get("HOST") or "127.0.0.1",
            "--port",
            str(db.get("PORT") or 5432),
            "--username",
            db.get("USER") or "postgres",
            db["NAME"],
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
        env={"PGPASSWORD": db.get("PASSWORD") or ""},
        timeout=60,
    )
    return result.stdout


def traces_in(dump: str) -> list[str]:
    return [trace for trace in TRACES if re.search(re.escape(trace), dump, re.IGNORECASE)]


@pytest.mark.django_db(transaction=True)
def test_erasure_leaves_no_trace_of_the_person_in_any_table(zelda):
    assert traces_in(database_dump()) == TRACES  # the search finds them while they are there

    result = supporter_erase(supporter_id=zelda.pk)

    dump = database_dump()
    assert traces_in(dump) == []
    assert "bystander@example.org" in dump and "pm-bystander" in dump  # nobody else's data
    assert result.changed == {
        "Consent records": 1,
        "Tags": 2,
        "Engagement": 1,
        "Deliveries": 2,
        "Tracking events": 4,
        "Link clicks": 1,
        "Outbox messages": 2,
        "Import reports": 1,
        "Mailing audit log": 1,
        "Admin history": 1,
        "Supporter": 1,
    }


@pytest.mark.django_db
def test_erased_supporter_stays_as_an_anonymous_count(zelda):
    supporter_erase(supporter_id=zelda.pk)

    zelda.refresh_from_db()
    assert zelda.status == Supporter.Status.ERASED
    assert zelda.email == f"erased-{zelda.pk}@erased.invalid"
    assert (zelda.first_name, zelda.last_name, zelda.postcode, str(zelda.country)) == ("",) * 4
    assert not zelda.tags.exists()
    assert not ConsentRecord.objects.filter(supporter=zelda).exists()
    assert not Engagement.objects.filter(supporter=zelda).exists()
    assert Engagement.objects.count() == 1  # the bystander's
    assert Signature.objects.filter(supporter=zelda).count() == 2
    deliveries = Delivery.objects.filter(supporter=zelda)
    assert sorted(deliveries.values_list("status", "esp_status")) == [
        ("failed", "bounced"),
        ("sent", "delivered"),
    ]
    assert set(deliveries.values_list("esp_message_id", "error")) == {("", "")}
    assert TrackingEvent.objects.filter(delivery__supporter=zelda).count() == 2
    assert LinkClick.objects.filter(supporter=zelda).count() == 2
    # The bystander's outbox message and consent are theirs, and stay.
    assert OutboxMessage.objects.filter(to="bystander@example.org").exists()
    assert ConsentRecord.objects.count() == 1
    # Her row of an import's report is gone; the bystander's stays.
    assert list(SupporterImportRejection.objects.values_list("line", flat=True)) == [9]


@pytest.mark.django_db
def test_erasure_is_audited_without_the_email_and_safe_to_run_twice(zelda):
    first = supporter_erase(supporter_id=zelda.pk)
    second = supporter_erase(supporter_id=zelda.pk)

    assert not first.already_erased and second.already_erased and second.changed == {}
    entry = SupporterAuditEntry.objects.get(action=SupporterAuditEntry.Action.ERASED)
    assert f"#{zelda.pk}" in entry.detail and "@" not in entry.detail


@pytest.mark.django_db
def test_an_erased_address_is_never_imported_again_in_any_spelling(zelda):
    supporter_erase(supporter_id=zelda.pk)
    # The import checks each row with email_is_suppressed.
    assert email_is_suppressed(EMAIL)
    assert email_is_suppressed("  Zelda.Quartermaine@EXAMPLE.ORG ")
    assert not email_is_suppressed("bystander@example.org")


@pytest.mark.django_db
def test_an_erased_supporter_is_never_in_a_mailing_audience(zelda):
    mailing = MailingFactory()
    assert zelda in mailing_audience(mailing)
    supporter_erase(supporter_id=zelda.pk)
    assert zelda not in mailing_audience(mailing)


@pytest.mark.django_db
def test_a_fresh_signature_after_erasure_makes_a_new_subscribed_supporter(zelda, client):
    supporter_erase(supporter_id=zelda.pk)
    petition = PetitionFactory()

    response = client.post(
        f"/petitions/{petition.slug}/",
        {"first_name": "Zelda", "last_name": "Q", "email": EMAIL, "country": "NZ",
         "consent": "on"},
    )  # fmt: skip

    assert response.status_code == 302
    again = Supporter.objects.get(email=EMAIL)
    assert again.pk != zelda.pk
    assert again.status == Supporter.Status.SUBSCRIBED
    assert ConsentRecord.objects.filter(supporter=again).count() == 1
    zelda.refresh_from_db()
    assert zelda.status == Supporter.Status.ERASED


@pytest.mark.django_db
def test_an_old_personal_link_of_an_erased_supporter_signs_nobody(zelda, client):
    petition = PetitionFactory()
    token = make_petition_token(supporter_id=zelda.pk, mailing_id=None, petition_id=petition.pk)
    supporter_erase(supporter_id=zelda.pk)

    page = client.get(f"/petitions/{petition.slug}/?t={token}").content.decode()

    assert "Zelda" not in page and "erased.invalid" not in page and 'name="email"' in page
    client.post(f"/petitions/{petition.slug}/?t={token}", {"t": token})
    assert not Signature.objects.filter(petition=petition).exists()


@pytest.mark.django_db
def test_erasing_an_address_rally_does_not_hold_suppresses_it_and_scrubs_its_traces():
    TrackingEvent.objects.create(
        esp="postmark", event_id="ev-9", event_type="opened", recipient="stranger@example.org",
        occurred_at="2026-01-01T00:00:00Z", payload={"Recipient": "stranger@example.org"},
    )  # fmt: skip

    result = email_erase(email="Stranger@Example.org")

    assert result.supporter_id is None and result.changed == {"Tracking events": 1}
    assert email_is_suppressed("stranger@example.org")
    event = TrackingEvent.objects.get()
    assert (event.recipient, event.payload) == ("", {})
    again = email_erase(email="stranger@example.org")
    assert again.already_erased and again.changed == {}


@pytest.mark.django_db
def test_erasure_takes_only_the_whole_address_never_a_longer_one_containing_it():
    ann = SupporterFactory(email="ann@example.org")
    longer = ["joann@example.org", "ann@example.org.uk", "ann@example.organic"]
    for n, address in enumerate(longer):
        TrackingEvent.objects.create(
            esp="postmark", event_id=f"ev-{n}", event_type="delivered", recipient=address,
            occurred_at="2026-01-01T00:00:00Z", payload={"Recipient": address},
            description=f"Delivered to {address}.",
        )  # fmt: skip
        OutboxMessage.objects.create(to=address, from_email="c@rally.example", subject="Hi")
    OutboxMessage.objects.create(to="Ann@Example.org", from_email="c@rally.example", subject="Hi")
    audit = MailingAuditEntry.objects.create(
        mailing_name="Appeal", action=MailingAuditEntry.Action.TEST_SENT,
        detail="to joann@example.org, ann@example.org. And <ANN@example.org>",
    )  # fmt: skip

    supporter_erase(supporter_id=ann.pk)

    assert sorted(TrackingEvent.objects.values_list("recipient", flat=True)) == sorted(longer)
    assert sorted(OutboxMessage.objects.values_list("to", flat=True)) == sorted(longer)
    audit.refresh_from_db()
    assert audit.detail == "to joann@example.org, [erased]. And <[erased]>"
