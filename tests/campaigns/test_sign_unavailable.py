"""When the database cannot take a signature in time: a clear page, nothing stored, no 500.

A second, real database connection holds the lock that signing needs, as a long transaction
elsewhere (a bulk update, an admin edit) would: a table lock on PostgreSQL, the write lock on
SQLite. The signature waits for the write timeout, then gives up.
"""

from contextlib import contextmanager

import pytest
from django.db import connection, connections, transaction

from campaigns.links import make_petition_token
from campaigns.models import Signature
from campaigns.signing import SignatureInput, signature_create
from supporters.models import ConsentRecord, Supporter
from tests.campaigns.test_sign import VALID, sign
from tests.factories import PetitionFactory, SupporterFactory

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_MS = 300


@pytest.fixture
def short_write_timeout(settings):
    """Give up on a write after WAIT_MS, not the production default of seconds."""
    settings.RALLY_SIGN_WRITE_TIMEOUT_MS = WAIT_MS
    if connection.vendor == "sqlite":
        # SQLite waits for its write lock as long as its busy timeout (OPTIONS["timeout"], s).
        configured_ms = int(connection.settings_dict["OPTIONS"].get("timeout", 5) * 1000)
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {WAIT_MS}")
        yield
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {configured_ms}")
    else:
        yield


@contextmanager
def writes_blocked_elsewhere():
    """Hold, from another connection, the lock that writing a supporter needs."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            if other.vendor == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            else:
                cursor.execute("BEGIN")
                cursor.execute("LOCK TABLE supporters_supporter IN EXCLUSIVE MODE")
            yield
            cursor.execute("ROLLBACK")
    finally:
        other.close()


def test_a_signature_the_database_cannot_take_in_time_says_so_and_stores_nothing(
    client, short_write_timeout
):
    petition = PetitionFactory()
    with writes_blocked_elsewhere():
        response = sign(client, petition, first_name="Анна")
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    page = response.content.decode()
    assert "nothing was stored" in page and "sign again" in page
    # The form keeps what was typed, so signing again is one tap.
    assert 'value="Анна"' in page and 'value="Ann.Lee@Example.org"' in page
    assert not Signature.objects.exists()
    assert not Supporter.objects.exists() and not ConsentRecord.objects.exists()

    # Once the lock is gone, the same signer signs, once.
    assert sign(client, petition).status_code == 302
    assert Signature.objects.count() == 1 and ConsentRecord.objects.count() == 1


def test_the_page_says_so_in_russian(client, short_write_timeout):
    petition = PetitionFactory()
    with writes_blocked_elsewhere():
        response = client.post(f"/petitions/{petition.slug}/?lang=ru", VALID)
    assert response.status_code == 503
    assert "ничего не записано" in response.content.decode()


def test_a_personal_link_that_cannot_sign_in_time_offers_its_button_again(
    client, short_write_timeout
):
    petition = PetitionFactory()
    supporter = SupporterFactory(first_name="Olga")
    token = make_petition_token(supporter_id=supporter.pk, mailing_id=None, petition_id=petition.pk)
    with writes_blocked_elsewhere():
        response = client.post(f"/petitions/{petition.slug}/?t={token}", {"t": token})
    assert response.status_code == 503
    page = response.content.decode()
    assert "nothing was stored" in page and "Hello, Olga!" in page
    assert not Signature.objects.exists()
    assert client.post(f"/petitions/{petition.slug}/?t={token}", {"t": token}).status_code == 302
    assert Signature.objects.get().supporter == supporter


def test_the_write_timeout_holds_for_the_batch_only(short_write_timeout):
    """Inside a caller's transaction, the timeout set for a batch does not outlive it."""
    petition = PetitionFactory()
    signer = SignatureInput(email="inside@example.org", first_name="In", last_name="Side")
    with transaction.atomic():
        assert signature_create(petition=petition, signer=signer).created
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW statement_timeout")
                assert cursor.fetchone()[0] == "0"
    assert Signature.objects.filter(supporter__email="inside@example.org").exists()
