from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from supporters.models import MAILABLE, ConsentRecord, Supporter
from supporters.services import consent_record_create, supporter_upsert, truncate_ip
from supporters.tokens import make_unsubscribe_token, read_unsubscribe_token
from tests.factories import SupporterFactory

pytestmark = pytest.mark.django_db


def test_email_is_normalised_on_write_and_lookup():
    supporter = SupporterFactory(email="  Ann.Lee@Example.ORG ")
    supporter.refresh_from_db()
    assert supporter.email == "ann.lee@example.org"
    assert Supporter.objects.get(email="ANN.LEE@example.org") == supporter


def test_database_rejects_a_second_email_differing_only_in_case():
    SupporterFactory(email="ann@example.org")
    table = Supporter._meta.db_table
    # Bypass the ORM's normalisation: the constraint itself must hold.
    with pytest.raises(IntegrityError), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (email, first_name, last_name, country, postcode, language, "  # noqa: S608
            "status, source, created_at, updated_at) VALUES "
            "('ANN@example.org', '', '', '', '', 'en', 'subscribed', '', %s, %s)",
            ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"],
        )


def test_upsert_returns_the_existing_supporter_and_fills_only_blanks():
    existing = SupporterFactory(email="ann@example.org", first_name="Ann", last_name="")
    supporter, created = supporter_upsert(
        email="ANN@example.org", first_name="Mallory", last_name="Lee"
    )
    assert not created
    assert supporter.pk == existing.pk
    supporter.refresh_from_db()
    assert (supporter.first_name, supporter.last_name) == ("Ann", "Lee")


def test_upsert_without_consent_creates_an_unsubscribed_supporter():
    supporter, created = supporter_upsert(email="new@example.org", subscribed=False)
    assert created
    assert supporter.status == Supporter.Status.UNSUBSCRIBED


def test_consent_resubscribes_an_unsubscribed_supporter_but_not_a_bounced_one():
    left = SupporterFactory(status=Supporter.Status.UNSUBSCRIBED)
    bounced = SupporterFactory(status=Supporter.Status.BOUNCED)
    for supporter in (left, bounced):
        consent_record_create(supporter=supporter, wording="Keep me posted.", ip="203.0.113.77")
    left.refresh_from_db()
    bounced.refresh_from_db()
    assert left.status == Supporter.Status.SUBSCRIBED
    assert bounced.status == Supporter.Status.BOUNCED
    record = ConsentRecord.objects.filter(supporter=left).get()
    assert record.wording == "Keep me posted."
    assert record.ip_truncated == "203.0.113.0"


@pytest.mark.parametrize(
    ("ip", "expected"),
    [("198.51.100.23", "198.51.100.0"), ("2001:db8:1:2::5", "2001:db8:1::"), ("junk", None)],
)
def test_truncate_ip_keeps_only_the_network(ip, expected):
    assert truncate_ip(ip) == expected


def test_unsubscribe_token_round_trips_and_rejects_tampering():
    token = make_unsubscribe_token(42)
    assert read_unsubscribe_token(token) == 42
    assert read_unsubscribe_token(token.replace("42", "43", 1)) is None
    assert read_unsubscribe_token(token[:-2]) is None
    assert read_unsubscribe_token("") is None


def test_unsubscribe_get_changes_nothing_and_post_unsubscribes(client):
    supporter = SupporterFactory()
    url = f"/unsubscribe/{make_unsubscribe_token(supporter.pk)}/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'<form method="post"' in page.content
    supporter.refresh_from_db()
    assert supporter.status == Supporter.Status.SUBSCRIBED

    # A mail client's RFC 8058 one-click POST: no cookie, no CSRF token.
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    supporter.refresh_from_db()
    assert supporter.status == Supporter.Status.UNSUBSCRIBED
    assert supporter.unsubscribed_at is not None


def test_unsubscribe_with_a_bad_token_says_so_and_changes_nothing(client):
    supporter = SupporterFactory()
    response = client.post(f"/unsubscribe/{supporter.pk}:forged/")
    assert response.status_code == 400
    assert b"not recognised" in response.content
    supporter.refresh_from_db()
    assert supporter.status == Supporter.Status.SUBSCRIBED


def test_the_query_and_the_claim_agree_on_who_may_be_mailed():
    """MAILABLE (audiences, the index) and Supporter.is_mailable (the claim) are one rule."""
    now = timezone.now()
    for status in Supporter.Status.values:
        for paused_until in (None, now + timedelta(days=1)):
            SupporterFactory(status=status, paused_until=paused_until)
    by_query = set(Supporter.objects.filter(MAILABLE).values_list("pk", flat=True))
    by_claim = {
        supporter.pk
        for supporter in Supporter.objects.all()
        if Supporter.is_mailable(
            status=supporter.status, paused_until=supporter.paused_until, at=now
        )
    }
    assert by_query == by_claim
    assert len(by_query) == 1
    # A pause that is over counts as none at a claim; supporter_pauses_end clears it for queries.
    assert Supporter.is_mailable(
        status=Supporter.Status.SUBSCRIBED, paused_until=now - timedelta(seconds=1), at=now
    )
