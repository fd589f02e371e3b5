"""The signing rules and their SQL twins agree on every input; the batch statement stays cached.

rules.py states each rule once in Python, for the portable writer, with its SQL twin beside it
for the PostgreSQL writer. Here every twin is evaluated by the database for every input and
compared with its rule (the expressions are plain SQL, so SQLite evaluates them too).
"""

import itertools
import re
from dataclasses import replace

import pytest
from django.db import connection, transaction
from psycopg import _queries

from campaigns.signing import (
    SignatureInput,
    SignatureRequest,
    SigningUnavailable,
    postgres,
    rules,
    signature_create,
    signatures_record,
)
from campaigns.signing.postgres import (
    PREPARED_NAME,
    SIGN_BATCH_EXECUTE,
    SIGN_BATCH_PREPARE_AND_EXECUTE,
    SIGN_BATCH_SQL,
)
from supporters.models import Supporter
from tests.factories import PetitionFactory

pytestmark = pytest.mark.django_db

BOOLEANS = (False, True)


def evaluate(expression: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression}")  # noqa: S608 -- our own test expressions
        return bool(cursor.fetchone()[0])


def sql_boolean(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def test_awaits_confirmation_and_its_sql_agree_on_every_input():
    for requires, proved in itertools.product(BOOLEANS, BOOLEANS):
        expected = rules.awaits_confirmation(requires_confirmation=requires, link_proved=proved)
        sql = rules.awaits_confirmation_sql(
            requires_confirmation=sql_boolean(requires), link_proved=sql_boolean(proved)
        )
        assert evaluate(sql) == expected, (requires, proved)


def test_consent_subscribes_and_its_sql_agree_on_every_input():
    for consent, requires, proved in itertools.product(BOOLEANS, BOOLEANS, BOOLEANS):
        expected = rules.consent_subscribes(
            consent=consent, requires_confirmation=requires, link_proved=proved
        )
        sql = rules.consent_subscribes_sql(
            consent=sql_boolean(consent),
            requires_confirmation=sql_boolean(requires),
            link_proved=sql_boolean(proved),
        )
        assert evaluate(sql) == expected, (consent, requires, proved)


def test_consent_lifts_only_who_left_or_went_silent_in_python_and_in_sql():
    assert set(rules.CONSENT_LIFTS) == {Supporter.Status.UNSUBSCRIBED, Supporter.Status.SUNSET}
    for status in Supporter.Status:
        assert evaluate(rules.consent_lifts_sql(f"'{status.value}'")) == (
            status in rules.CONSENT_LIFTS
        ), status


def test_a_blank_is_filled_and_a_value_never_overwritten_in_sql():
    def row(**values):
        names = rules.FILLABLE_FIELDS
        return "SELECT " + ", ".join(f"'{values.get(name, '')}' AS {name}" for name in names)

    cases = [
        ({}, {"postcode": "N1"}, True),
        ({"postcode": "E1"}, {"postcode": "N1"}, False),
        ({"first_name": "Ann"}, {"first_name": ""}, False),
        ({}, {}, False),
    ]
    for known, new, fills in cases:
        expression = rules.fills_a_blank_sql("known", "new")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {expression} FROM ({row(**known)}) AS known, ({row(**new)}) AS new"  # noqa: S608
            )
            assert bool(cursor.fetchone()[0]) == fills, (known, new)
        # Each SET clause's value (after its " = "): the known value when set, else the new one.
        clauses = re.split(r", (?=\w+ = )", rules.fill_blanks_sql("known", "new"))
        values = [clause.split(" = ", 1)[1] for clause in clauses]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(values)} FROM ({row(**known)}) AS known, ({row(**new)}) AS new"  # noqa: S608
            )
            filled = dict(zip(rules.FILLABLE_FIELDS, cursor.fetchone(), strict=True))
        for name in rules.FILLABLE_FIELDS:
            assert filled[name] == (known.get(name) or new.get(name, "")), (known, new, name)


@pytest.mark.parametrize("pooled", [False, True], ids=["prepared", "pooled"])
def test_the_batch_statement_stays_within_psycopgs_parse_cache(pooled, monkeypatch):
    """Relies on psycopg internals (postgres.py): this fails when they change under it.

    Behind PgBouncer the whole statement goes with every batch; elsewhere the short EXECUTE of
    it, prepared once per connection. Either is parsed by psycopg once.
    """
    for statement in (SIGN_BATCH_SQL, SIGN_BATCH_EXECUTE):
        assert len(statement.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
        # Folded onto one line, an SQL comment would swallow the rest of the statement.
        assert "--" not in statement
        parameters = set(re.findall(r"%\((\w+)\)s", statement))
        assert len(parameters) <= _queries.MAX_CACHED_STATEMENT_PARAMS
    assert "--" not in SIGN_BATCH_PREPARE_AND_EXECUTE
    if connection.vendor != "postgresql":
        return  # the statement runs on PostgreSQL alone
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", pooled)
    petition = PetitionFactory()
    cache = _queries._query2pg_client
    for attempt in range(3):  # the first batch on a connection prepares it
        signer = SignatureInput(email=f"cached{attempt}@example.org", first_name="A", last_name="B")
        before = cache.cache_info().hits
        signatures_record([SignatureRequest(petition_id=petition.pk, signer=signer)])
        hits = cache.cache_info().hits - before
    assert hits >= 1, "the second batch was parsed again"


def test_the_prepared_batch_outlives_a_rollback():
    """PREPARE is not undone by a rollback: the next batch on the connection EXECUTEs it."""
    if connection.vendor != "postgresql":
        return  # the statement runs on PostgreSQL alone
    petition = PetitionFactory()

    def sign(email: str):
        signer = SignatureInput(email=email, first_name="A", last_name="B")
        return signatures_record([SignatureRequest(petition_id=petition.pk, signer=signer)])

    def prepared() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [PREPARED_NAME]
            )
            return cursor.fetchone()[0] == 1

    with transaction.atomic():
        sign("rolled-back@example.org")
        transaction.set_rollback(True)
    assert prepared()
    (outcome,) = sign("after-rollback@example.org")
    assert outcome.created
    assert Supporter.objects.filter(email="after-rollback@example.org").exists()
    assert not Supporter.objects.filter(email="rolled-back@example.org").exists()


@pytest.mark.django_db(transaction=True)
def test_a_connection_opened_afresh_prepares_the_batch_again():
    if connection.vendor != "postgresql":
        return  # the statement runs on PostgreSQL alone
    petition = PetitionFactory()
    for attempt in range(2):
        signer = SignatureInput(email=f"afresh{attempt}@example.org", first_name="A", last_name="B")
        (outcome,) = signatures_record([SignatureRequest(petition_id=petition.pk, signer=signer)])
        assert outcome.created
        connection.close()  # as CONN_MAX_AGE or a dropped connection would
    assert Supporter.objects.filter(email__startswith="afresh").count() == 2


@pytest.mark.django_db(transaction=True)  # a batch outside a transaction can be sent again
def test_a_prepared_batch_gone_missing_is_sent_whole_from_then_on(monkeypatch, caplog):
    """As behind a pooler in transaction mode that nobody told Rally about: the next batch
    meets a server connection without the statement, and is written all the same."""
    if connection.vendor != "postgresql":
        return  # the statement runs on PostgreSQL alone
    monkeypatch.setattr(postgres, "_prepared_statements_hold", True)
    petition = PetitionFactory()

    def sign(email: str):
        signer = SignatureInput(email=email, first_name="A", last_name="B")
        return signatures_record([SignatureRequest(petition_id=petition.pk, signer=signer)])

    sign("prepared@example.org")
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {PREPARED_NAME}")
    (outcome,) = sign("after-the-pooler@example.org")
    assert outcome.created
    assert not postgres._prepared_statements_hold
    assert "DATABASE_DISABLE_SERVER_SIDE_CURSORS" in caplog.text
    assert Supporter.objects.filter(email="after-the-pooler@example.org").exists()


def test_a_prepared_batch_gone_missing_inside_a_transaction_asks_to_sign_again(monkeypatch):
    """The caller's transaction is aborted, so the batch cannot be sent again in it: the signer
    is told to try again (503), and the next batch goes whole."""
    if connection.vendor != "postgresql":
        return  # the statement runs on PostgreSQL alone
    monkeypatch.setattr(postgres, "_prepared_statements_hold", True)
    petition = PetitionFactory()
    signer = SignatureInput(email="first@example.org", first_name="A", last_name="B")
    signature_create(petition=petition, signer=signer)
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {PREPARED_NAME}")
    with pytest.raises(SigningUnavailable), transaction.atomic():
        signature_create(petition=petition, signer=replace(signer, email="lost@example.org"))
    outcome = signature_create(petition=petition, signer=replace(signer, email="again@example.org"))
    assert outcome.created
    assert not Supporter.objects.filter(email="lost@example.org").exists()
