"""The PostgreSQL writer: a whole batch of signatures in one statement (sign_batch.sql).

What a surge of signers costs the database is mostly per statement, not per row, so the batch
the group commit gathers is written at once, set-based, under the same rules as the portable
writer (rules.py). The statement is a transaction of its own: no BEGIN and COMMIT round trips.
"""

import logging
import re
import weakref
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from string import Template

from django.conf import settings
from django.db import OperationalError, ProgrammingError, connection, transaction
from django.utils import timezone
from psycopg import errors as pg_errors

from campaigns.counters import petition_count_add
from campaigns.models import Petition, Signature
from supporters.models import ConsentRecord, Engagement, Supporter
from supporters.services import supporter_subscribe

from . import rules
from .portable import signatures_write_portable
from .types import CLOSED, SignatureOutcome, SignatureRequest

logger = logging.getLogger(__name__)

# Relies on psycopg internals: psycopg caches how it parses a statement only when the statement
# is at most psycopg._queries.MAX_CACHED_STATEMENT_LENGTH bytes, and would parse this one again
# for every batch. So comment lines go and white space is folded (no literal in it holds a
# space); tests/campaigns/test_signing_rules.py fails when the statement stops being cached.


def _load_statement() -> str:
    """Fill sign_batch.sql with the table names and the rules' SQL; fold it for the cache."""
    text = Path(__file__).with_name("sign_batch.sql").read_text()
    sql_lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    mailing_table = Signature._meta.get_field("mailing").related_model._meta.db_table
    statement = Template("\n".join(sql_lines)).substitute(
        petition_table=Petition._meta.db_table,
        supporter_table=Supporter._meta.db_table,
        consent_table=ConsentRecord._meta.db_table,
        engagement_table=Engagement._meta.db_table,
        signature_table=Signature._meta.db_table,
        mailing_table=mailing_table,
        subscribed=Supporter.Status.SUBSCRIBED.value,
        unsubscribed=Supporter.Status.UNSUBSCRIBED.value,
        awaits_confirmation=rules.awaits_confirmation_sql(
            requires_confirmation="p.requires_confirmation", link_proved="s.confirmed"
        ),
        consent_subscribes=rules.consent_subscribes_sql(
            consent="s.any_consent",
            requires_confirmation="p.requires_confirmation",
            link_proved="s.confirmed",
        ),
        fill_blanks=rules.fill_blanks_sql("was", "EXCLUDED"),
        fills_a_blank=rules.fills_a_blank_sql("was", "EXCLUDED"),
        resubscribes=(
            f"({rules.consent_lifts_sql('was.status')} "
            f"AND EXCLUDED.status = '{Supporter.Status.SUBSCRIBED.value}')"
        ),
    )
    return " ".join(statement.split())


SIGN_BATCH_SQL = _load_statement()

# The batch's WITH query as a server-side prepared statement, made once per connection: parsing
# and planning it again for every batch was about a third of what a batch cost PostgreSQL
# (docs/performance.md, "Where a signature's CPU goes"). Each batch then sends the
# same three statements as one simple query, SET LOCAL, EXECUTE and SET LOCAL, still one
# implicit transaction. PREPARE names its parameters' types; %(now)s has no cast of its own.
PREPARED_NAME = "rally_sign_batch"
PARAMETER_TYPES = {
    "now": "timestamptz",
    "petition_ids": "bigint[]",
    "sign_petition": "bigint[]",
    "sign_email": "text[]",
    "sign_mailing": "bigint[]",
    "sign_source": "text[]",
    "sign_confirmed": "boolean[]",
    "sign_consent": "boolean[]",
    "sign_any_consent": "boolean[]",
    "emails": "text[]",
    "first_names": "text[]",
    "last_names": "text[]",
    "countries": "text[]",
    "postcodes": "text[]",
    "languages": "text[]",
    "sources": "text[]",
    "consent_petition": "bigint[]",
    "consent_email": "text[]",
    "consent_wording": "text[]",
    "consent_source_url": "text[]",
    "consent_ip": "inet[]",
}


def _prepared_forms(statement: str) -> tuple[str, str]:
    """Return the batch that EXECUTEs the prepared WITH query, and the one that PREPAREs it
    first: the PREPARE goes after the SET LOCAL, so the write timeout bounds it too (it waits
    for the same table locks as the write)."""
    set_timeout, query, reset_timeout = statement.split("; ")
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query)))
    numbered = re.sub(r"%\((\w+)\)s", lambda match: f"${names.index(match[1]) + 1}", query)
    types = ", ".join(PARAMETER_TYPES[name] for name in names)
    arguments = ", ".join(f"%({name})s" for name in names)
    execute = f"EXECUTE {PREPARED_NAME} ({arguments})"
    # A literal % in the PREPARE would read as a placeholder: the statement holds none.
    prepare = f"PREPARE {PREPARED_NAME} ({types}) AS {numbered}"
    return (
        f"{set_timeout}; {execute}; {reset_timeout}",
        f"{set_timeout}; {prepare}; {execute}; {reset_timeout}",
    )


SIGN_BATCH_EXECUTE, SIGN_BATCH_PREPARE_AND_EXECUTE = _prepared_forms(SIGN_BATCH_SQL)
# The psycopg connections this process knows to hold the prepared statement; one that closes
# leaves the set with its last reference.
_prepared_on: "weakref.WeakSet[object]" = weakref.WeakSet()
# Cleared when a prepared statement went missing between batches: a pooler that hands out
# server connections per transaction, which DATABASE_DISABLE_SERVER_SIDE_CURSORS should have
# said. The process then sends the whole statement, as it would have been told to.
_prepared_statements_hold = True


def _batch_statement(cursor) -> tuple[str, bool]:
    """Return the statement to send this batch as, and whether it prepares the connection.

    Behind PgBouncer in transaction mode (DATABASE_DISABLE_SERVER_SIDE_CURSORS, README "Scale
    out") consecutive transactions may meet different server connections, and a prepared
    statement lives on one: there the whole statement goes every time. Elsewhere a connection
    this process has not seen prepare is asked (a catalog read, which waits for no lock): a
    PREPARE survives the rollback of a batch that failed after it, and preparing twice fails.
    """
    if connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS") or not _prepared_statements_hold:
        return SIGN_BATCH_SQL, False
    raw = connection.connection
    if raw in _prepared_on:
        return SIGN_BATCH_EXECUTE, False
    cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [PREPARED_NAME])
    if cursor.fetchone():
        _prepared_on.add(raw)
        return SIGN_BATCH_EXECUTE, False
    return SIGN_BATCH_PREPARE_AND_EXECUTE, True


def _prepared_statements_lost() -> None:
    global _prepared_statements_hold
    _prepared_on.discard(connection.connection)
    if _prepared_statements_hold:
        logger.warning(
            "The prepared sign batch went missing between batches: behind a pooler in "
            "transaction mode, set DATABASE_DISABLE_SERVER_SIDE_CURSORS=true. Sending the "
            "batch statement whole from now on."
        )
    _prepared_statements_hold = False


def signatures_write_postgres(requests: Sequence[SignatureRequest]) -> list[SignatureOutcome]:
    """Record a batch in one statement; return one outcome per request, in order.

    The batch means what the same requests one after another would mean: each supporter is
    described by the first non-blank value of each field among their requests, consent given
    in any of them subscribes, and a (petition, email) pair's first request makes the signature
    while the others are no-ops.
    """
    if _proof_differs_within_a_signing(requests):
        return signatures_write_portable(requests)
    supporters: dict[str, dict] = {}
    signings: dict[tuple[int, str], SignatureRequest] = {}
    # Consent in any of a signing's requests subscribes; the signature records the first's.
    consented: set[tuple[int, str]] = set()
    for request in requests:
        _describe_supporter(supporters, request)
        key = (request.petition_id, request.signer.email)
        signings.setdefault(key, request)
        if request.signer.consent:
            consented.add(key)
    consents = [request for request in requests if request.signer.consent]
    params = {
        "timeout_ms": settings.RALLY_SIGN_WRITE_TIMEOUT_MS,
        "now": timezone.now(),
        "petition_ids": sorted({request.petition_id for request in requests}),
        "sign_petition": [key[0] for key in signings],
        "sign_email": [key[1] for key in signings],
        "sign_mailing": [request.mailing_id for request in signings.values()],
        "sign_source": [request.source for request in signings.values()],
        "sign_confirmed": [request.confirmed for request in signings.values()],
        "sign_consent": [request.signer.consent for request in signings.values()],
        "sign_any_consent": [key in consented for key in signings],
        "emails": list(supporters),
        "consent_petition": [request.petition_id for request in consents],
        "consent_email": [request.signer.email for request in consents],
        "consent_wording": [request.signer.consent_wording for request in consents],
        "consent_source_url": [request.source_url for request in consents],
        "consent_ip": [request.ip for request in consents],
    }
    # One array per supporter field, named in the plural (short: postgres.py's cache).
    for name, array in (
        ("first_name", "first_names"),
        ("last_name", "last_names"),
        ("country", "countries"),
        ("postcode", "postcodes"),
        ("language", "languages"),
        ("source", "sources"),
    ):
        params[array] = [values[name] for values in supporters.values()]
    with connection.cursor() as cursor:
        statement, prepares = _batch_statement(cursor)
        try:
            cursor.execute(statement, params)
        except ProgrammingError as error:
            if not isinstance(error.__cause__, pg_errors.InvalidSqlStatementName):
                raise
            _prepared_statements_lost()
            if connection.in_atomic_block:
                # The caller's transaction is aborted: the signer is asked to try again.
                raise OperationalError("The prepared sign batch went missing.") from error
            # Nothing was written (the batch's implicit transaction failed): send it whole.
            statement, prepares = SIGN_BATCH_SQL, False
            cursor.execute(statement, params)
        if prepares:
            _prepared_on.add(connection.connection)
            cursor.nextset()  # past the PREPARE
        cursor.nextset()  # past the SET, to the batch's rows
        rows = cursor.fetchall()
    signed = _outcomes_by_signing(rows)
    outcomes = []
    for request in requests:
        key = (request.petition_id, request.signer.email)
        outcome = signed.get(key, CLOSED)
        if signings[key] is not request and outcome.created:
            outcome = SignatureOutcome(created=False, signature_id=outcome.signature_id)
        outcomes.append(outcome)
    return outcomes


def _proof_differs_within_a_signing(requests: Sequence[SignatureRequest]) -> bool:
    """Return whether one signing's requests differ in whether a personal link proved them.

    The statement takes a signing's proof from its first request, which then decides what the
    others mean; one after another, a later request's proof would count in its own right. Two
    such requests in one batch (a form and a personal link of the same signer, at the same
    moment) are rare enough to be written one after another, by the portable writer.
    """
    proved: dict[tuple[int, str], bool] = {}
    for request in requests:
        key = (request.petition_id, request.signer.email)
        if proved.setdefault(key, request.confirmed) != request.confirmed:
            return True
    return False


def _describe_supporter(supporters: dict[str, dict], request: SignatureRequest) -> None:
    """Fold a request into what the batch says of its supporter, as one write after another.

    The first request creates the supporter (language and source are theirs); each later one
    may only fill a field still blank (rules.FILLABLE_FIELDS).
    """
    signer = request.signer
    values = supporters.get(signer.email)
    if values is None:
        supporters[signer.email] = {
            "first_name": signer.first_name,
            "last_name": signer.last_name,
            "country": signer.country,
            "postcode": signer.postcode,
            "language": signer.language or Supporter._meta.get_field("language").default,
            "source": request.supporter_source,
        }
        return
    for name in rules.FILLABLE_FIELDS:
        if not values[name]:
            values[name] = getattr(signer, name)


def _outcomes_by_signing(rows) -> dict[tuple[int, str], SignatureOutcome]:
    """Read the statement's rows: one per signing whose petition was open.

    Its signature columns are null when the signature was there already and stays as it was.
    """
    signed = {}
    for petition_id, email, signature_id, inserted, confirmed_at, consent, supporter_id in rows:
        if signature_id is None:
            signed[petition_id, email] = SignatureOutcome(created=False)
        elif inserted:
            signed[petition_id, email] = SignatureOutcome(
                created=True,
                signature_id=signature_id,
                awaiting_confirmation=confirmed_at is None,
            )
        else:  # an unconfirmed signature that this signing has just confirmed
            signed[petition_id, email] = SignatureOutcome(created=False, signature_id=signature_id)
            transaction.on_commit(partial(petition_count_add, petition_id))
            if consent:
                # A statement of its own (the one above has written this supporter's row). Were
                # the process to die in between, they would stay unmailed: the safe way round.
                supporter_subscribe(supporter_id=supporter_id)
    return signed
