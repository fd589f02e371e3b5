"""Writes that concern petitions: signing, and confirming a signature by email."""

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import InterfaceError, OperationalError, connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from config.db import insert_unless_exists
from config.group_commit import BatchAbandoned, GroupCommit
from supporters.models import Supporter
from supporters.services import (
    FILLABLE_FIELDS,
    consent_record_create,
    supporter_subscribe,
    supporter_upsert,
    truncate_ip,
)

from .counters import petition_count_add
from .links import make_confirmation_token
from .models import Petition, Signature

logger = logging.getLogger(__name__)


class PetitionClosed(ValidationError):
    """The petition no longer takes signatures."""


class SigningUnavailable(Exception):
    """The database could not take the signature just now (too slow, or unreachable).

    Nothing of it was stored: the signer may simply sign again.
    """


@dataclass(frozen=True)
class SignatureInput:
    """What a supporter typed into the sign form, already validated."""

    email: str
    first_name: str
    last_name: str
    country: str = ""
    postcode: str = ""
    consent: bool = False
    # The consent wording exactly as shown to the signer, in their language.
    consent_wording: str = ""
    language: str = ""


@dataclass(frozen=True)
class SignatureRequest:
    """One sign-up to record: who, on which petition, and what brought them."""

    petition_id: int
    signer: SignatureInput
    source_url: str = ""
    ip: str | None = None
    source: str = ""
    # Where a new supporter came from: the share ref, or else the petition's slug.
    supporter_source: str = ""
    mailing_id: int | None = None
    # A personal link proved the address: no confirmation email, and an earlier unconfirmed
    # signature of theirs is confirmed.
    confirmed: bool = False


@dataclass(frozen=True)
class SignatureOutcome:
    """What recording a SignatureRequest did."""

    # False for a second signature, a harmless no-op; its id is then not always known.
    created: bool
    signature_id: int | None = None
    awaiting_confirmation: bool = False  # a confirmation email is on its way
    closed: bool = False  # the petition closed before the signature was written


CLOSED = SignatureOutcome(created=False, closed=True)


def signature_create(
    *,
    petition: Petition,
    signer: SignatureInput,
    source_url: str = "",
    ip: str | None = None,
    source: str = "",
    mailing_id: int | None = None,
    confirmed: bool = False,
) -> SignatureOutcome:
    """Record a signature, committed before this returns; return what it did.

    A second signature by the same supporter is a harmless no-op, so the caller can answer
    identically whether or not the email was known. Consent, when given, is recorded with the
    exact wording shown. Concurrent calls in one process share a transaction (see
    config/group_commit.py), which is what lets a surge of signers through.
    """
    if not petition.is_open:
        raise PetitionClosed("This petition is closed and no longer takes signatures.")
    if signer.consent and not signer.consent_wording:
        signer = replace(signer, consent_wording=petition.consent_wording)
    request = SignatureRequest(
        petition_id=petition.pk,
        signer=signer,
        source_url=source_url[:500],
        ip=truncate_ip(ip),
        source=source,
        supporter_source=source or petition.slug,
        mailing_id=mailing_id,
        confirmed=confirmed,
    )
    try:
        outcome = _signing.submit(request)
    except (OperationalError, InterfaceError, BatchAbandoned) as error:
        # A timeout, a lost connection, a database that is down: the write was rolled back or
        # never made. Errors in the data itself (IntegrityError, DataError) are bugs and rise.
        logger.warning("Signature not recorded, the database is unavailable: %s", error)
        raise SigningUnavailable("The signature could not be recorded just now.") from error
    if outcome.closed:
        raise PetitionClosed("This petition is closed and no longer takes signatures.")
    return outcome


def signatures_record(requests: Sequence[SignatureRequest]) -> list[SignatureOutcome]:
    """Record signatures in one transaction; return one outcome per request, in order.

    PostgreSQL writes the whole batch in one statement; other databases one request at a
    time. Either way the batch means what the same requests one after another would mean.
    Follow-ups (counts, confirmation emails) are queued once the transaction commits.
    """
    if connection.vendor == "postgresql":
        # One query is a transaction of its own: no BEGIN and COMMIT round trips.
        outcomes = _signatures_record_set_based(requests)
    else:
        with transaction.atomic():
            outcomes = [_signature_record_one(request) for request in requests]
    # Run at once when the write has committed, or when an enclosing transaction does.
    newly_counted: Counter[int] = Counter()
    for request, outcome in zip(requests, outcomes, strict=True):
        if outcome.awaiting_confirmation:
            signature_confirmation_send(signature_id=outcome.signature_id)
        elif outcome.created:
            newly_counted[request.petition_id] += 1
    for petition_id, amount in newly_counted.items():
        transaction.on_commit(partial(petition_count_add, petition_id, amount))
    return outcomes


_signing: GroupCommit[SignatureRequest, SignatureOutcome] = GroupCommit(
    signatures_record, max_batch=100
)


def _signature_record_one(request: SignatureRequest) -> SignatureOutcome:
    """Record one request with the ORM: the portable path of signatures_record."""
    petition = Petition.objects.filter(pk=request.petition_id, is_open=True).first()
    if petition is None:
        return CLOSED
    signer = request.signer
    needs_confirmation = petition.requires_confirmation and not request.confirmed
    # Consent subscribes at once, unless the address is still to be confirmed.
    subscribes = signer.consent and not needs_confirmation
    supporter, created = supporter_upsert(
        email=signer.email,
        first_name=signer.first_name,
        last_name=signer.last_name,
        country=signer.country,
        postcode=signer.postcode,
        language=signer.language,
        source=request.supporter_source,
        subscribed=subscribes,
    )
    if signer.consent:
        consent_record_create(
            supporter=supporter,
            wording=signer.consent_wording,
            source_url=request.source_url,
            ip=request.ip,
            resubscribe=subscribes and not created,  # a new one starts subscribed already
        )
    now = timezone.now()
    # The unique (petition, supporter) constraint decides, even between concurrent requests.
    signature_id = insert_unless_exists(
        Signature,
        petition=petition.pk,
        supporter=supporter.pk,
        created_at=now,
        confirmed_at=None if needs_confirmation else now,
        mailing=_existing_mailing_id(request.mailing_id),
        source=request.source,
        consented=signer.consent,
    )
    if signature_id is not None:
        return SignatureOutcome(
            created=True, signature_id=signature_id, awaiting_confirmation=needs_confirmation
        )
    existing = Signature.objects.only("pk", "confirmed_at").get(
        petition=petition, supporter=supporter
    )
    if request.confirmed and existing.confirmed_at is None:
        # Signed before without confirming; a personal link proves the address now.
        signature_confirm(signature_id=existing.pk)
    return SignatureOutcome(created=False, signature_id=existing.pk)


def _existing_mailing_id(mailing_id: int | None) -> int | None:
    """The mailing to credit, or None once it is deleted (a link outlives its mailing)."""
    from mailings.models import Mailing

    if mailing_id is None or not Mailing.objects.filter(pk=mailing_id).exists():
        return None
    return mailing_id


# The set-based path of signatures_record. It keeps the rules of supporter_upsert (a new
# supporter is subscribed only with consent; a known one's blank details may be filled in,
# never overwritten), of supporter_subscribe (consent resubscribes someone who left, never a
# bounced or complaining address) and of _signature_record_one (on a petition that asks for
# confirmation, consent subscribes only once confirmed), over three tables at once.
# Supporters are upserted in email order, so two batches lock the same rows in the same order.
# In RETURNING, xmax is 0 on a row the statement inserted and set on one it updated.
_FILL_BLANKS = ",\n".join(
    f"{name} = CASE WHEN known.{name} = '' THEN EXCLUDED.{name} ELSE known.{name} END"
    for name in FILLABLE_FIELDS
)
_CHANGED = " OR ".join(f"(known.{name} = '' AND EXCLUDED.{name} <> '')" for name in FILLABLE_FIELDS)
_RESUBSCRIBES = "(known.status = 'unsubscribed' AND EXCLUDED.status = 'subscribed')"
# SET LOCAL: the timeout holds for this batch only. With client-side binding (Django's default)
# the three statements go as one simple query, which PostgreSQL runs as one transaction; inside
# a caller's transaction the timeout is put back once the batch is written.
SIGN_BATCH_SQL = f"""
SET LOCAL statement_timeout = %(timeout_ms)s;
WITH open_petition AS (
    SELECT id, requires_confirmation FROM campaigns_petition
    WHERE id = ANY(%(petition_ids)s::bigint[]) AND is_open
),
signing AS (
    SELECT s.*, open_petition.requires_confirmation,
        s.consent AND (s.confirmed OR NOT open_petition.requires_confirmation) AS subscribes
    FROM unnest(%(sign_petition)s::bigint[], %(sign_email)s::text[], %(sign_mailing)s::bigint[],
                %(sign_source)s::text[], %(sign_confirmed)s::boolean[],
                %(sign_consent)s::boolean[])
        AS s(petition_id, email, mailing_id, source, confirmed, consent)
    JOIN open_petition ON open_petition.id = s.petition_id
),
supporter AS (
    INSERT INTO supporters_supporter AS known (email, first_name, last_name, country, postcode,
        language, status, source, created_at, updated_at)
    SELECT email, first_name, last_name, country, postcode, language,
        CASE WHEN EXISTS (SELECT FROM signing WHERE signing.email = u.email AND subscribes)
            THEN 'subscribed' ELSE 'unsubscribed' END,
        source, %(now)s, %(now)s
    FROM unnest(%(supporter_email)s::text[], %(supporter_first_name)s::text[],
                %(supporter_last_name)s::text[], %(supporter_country)s::text[],
                %(supporter_postcode)s::text[], %(supporter_language)s::text[],
                %(supporter_source)s::text[])
        AS u(email, first_name, last_name, country, postcode, language, source)
    WHERE email IN (SELECT email FROM signing)
    ORDER BY email
    ON CONFLICT (email) DO UPDATE SET
        {_FILL_BLANKS},
        status = CASE WHEN {_RESUBSCRIBES} THEN 'subscribed' ELSE known.status END,
        unsubscribed_at = CASE WHEN {_RESUBSCRIBES} THEN NULL ELSE known.unsubscribed_at END,
        updated_at = CASE WHEN {_CHANGED} OR {_RESUBSCRIBES}
            THEN EXCLUDED.updated_at ELSE known.updated_at END
    RETURNING known.id, known.email
),
consent AS (
    INSERT INTO supporters_consentrecord (supporter_id, wording, source_url, ip_truncated,
        created_at)
    SELECT supporter.id, c.wording, c.source_url, c.ip_truncated, %(now)s
    FROM unnest(%(consent_petition)s::bigint[], %(consent_email)s::text[],
                %(consent_wording)s::text[], %(consent_source_url)s::text[],
                %(consent_ip)s::inet[])
        AS c(petition_id, email, wording, source_url, ip_truncated)
    JOIN supporter USING (email)
    WHERE c.petition_id IN (SELECT id FROM open_petition)
),
signature AS (
    INSERT INTO campaigns_signature AS known (petition_id, supporter_id, created_at,
        confirmed_at, mailing_id, source, consented)
    SELECT signing.petition_id, supporter.id, %(now)s,
        CASE WHEN signing.requires_confirmation AND NOT signing.confirmed THEN NULL
             ELSE %(now)s::timestamptz END,
        (SELECT id FROM mailings_mailing WHERE id = signing.mailing_id),
        signing.source, signing.consent
    FROM signing JOIN supporter USING (email)
    ON CONFLICT (petition_id, supporter_id) DO UPDATE SET confirmed_at = EXCLUDED.confirmed_at
        WHERE known.confirmed_at IS NULL AND EXCLUDED.confirmed_at IS NOT NULL
    RETURNING known.id, known.petition_id, known.supporter_id, known.confirmed_at,
        known.consented, known.xmax = 0 AS inserted
)
SELECT signing.petition_id, signing.email, signature.id, signature.inserted,
    signature.confirmed_at IS NULL AS awaiting_confirmation, signature.consented,
    supporter.id
FROM signing
JOIN supporter USING (email)
LEFT JOIN signature
    ON signature.petition_id = signing.petition_id AND signature.supporter_id = supporter.id;
SET LOCAL statement_timeout TO DEFAULT
"""  # noqa: S608 -- the only text put in is our own column names
# Whitespace collapsed (4.4 KB to 3.99 KB): psycopg caches how it parses a statement only up to
# 4 KB, and would parse this one again for every batch. (No literal in it holds a space.)
SIGN_BATCH_SQL = " ".join(SIGN_BATCH_SQL.split())


def _signatures_record_set_based(requests: Sequence[SignatureRequest]) -> list[SignatureOutcome]:
    """Record a batch in one statement on PostgreSQL; see SIGN_BATCH_SQL."""
    # What one request after another would do: each email's first request describes the
    # supporter, any consent among them counts, and a (petition, email) pair's first request
    # makes the signature while the others are no-ops.
    supporters: dict[str, SignatureRequest] = {}
    signings: dict[tuple[int, str], SignatureRequest] = {}
    consented: set[tuple[int, str]] = set()
    for request in requests:
        key = (request.petition_id, request.signer.email)
        supporters.setdefault(request.signer.email, request)
        signings.setdefault(key, request)
        if request.signer.consent:
            consented.add(key)
    consents = [request for request in requests if request.signer.consent]
    now = timezone.now()
    params = {
        "timeout_ms": settings.RALLY_SIGN_WRITE_TIMEOUT_MS,
        "now": now,
        "petition_ids": sorted({request.petition_id for request in requests}),
        "sign_petition": [key[0] for key in signings],
        "sign_email": [key[1] for key in signings],
        "sign_mailing": [request.mailing_id for request in signings.values()],
        "sign_source": [request.source for request in signings.values()],
        "sign_confirmed": [request.confirmed for request in signings.values()],
        "sign_consent": [key in consented for key in signings],
        "supporter_email": list(supporters),
        "consent_petition": [request.petition_id for request in consents],
        "consent_email": [request.signer.email for request in consents],
        "consent_wording": [request.signer.consent_wording for request in consents],
        "consent_source_url": [request.source_url for request in consents],
        "consent_ip": [request.ip for request in consents],
    }
    for name in ("first_name", "last_name", "country", "postcode"):
        params[f"supporter_{name}"] = [
            getattr(request.signer, name) for request in supporters.values()
        ]
    default_language = Supporter._meta.get_field("language").default
    params["supporter_language"] = [
        request.signer.language or default_language for request in supporters.values()
    ]
    params["supporter_source"] = [request.supporter_source for request in supporters.values()]
    with connection.cursor() as cursor:
        cursor.execute(SIGN_BATCH_SQL, params)
        cursor.nextset()  # past the SET, to the batch's rows
        rows = cursor.fetchall()
    # A row per signing whose petition was open; its signature columns are null when the
    # signature was there already (and stays as it was).
    signed = {}
    for petition_id, email, signature_id, inserted, awaiting, consent, supporter_id in rows:
        if signature_id is None:
            signed[petition_id, email] = SignatureOutcome(created=False)
        elif inserted:
            signed[petition_id, email] = SignatureOutcome(
                created=True, signature_id=signature_id, awaiting_confirmation=awaiting
            )
        else:  # an unconfirmed signature that a personal link has just confirmed
            signed[petition_id, email] = SignatureOutcome(created=False, signature_id=signature_id)
            transaction.on_commit(partial(petition_count_add, petition_id))
            if consent:
                # A statement of its own (the one above has written this supporter's row). Were
                # the process to die in between, they would stay unmailed: the safe way round.
                supporter_subscribe(supporter_id=supporter_id)
    outcomes = []
    for request in requests:
        key = (request.petition_id, request.signer.email)
        outcome = signed.get(key, CLOSED)
        if signings[key] is not request and outcome.created:
            outcome = SignatureOutcome(created=False, signature_id=outcome.signature_id)
        outcomes.append(outcome)
    return outcomes


def signature_confirmation_send(*, signature_id: int) -> None:
    """Queue the confirmation email of an unconfirmed signature, once the transaction commits."""
    from . import tasks  # tasks import this module

    transaction.on_commit(lambda: tasks.signature_confirmation_email_task.delay(signature_id))


def signature_confirmation_resend(*, petition: Petition, email: str) -> bool:
    """Queue the confirmation email again for this email's unconfirmed signature, if there is one.

    The caller answers the same either way, so that nobody learns who signed.
    """
    signature = (
        Signature.objects.filter(
            petition=petition, supporter__email=email, confirmed_at__isnull=True
        )
        .only("pk")
        .first()
    )
    if signature is None:
        return False
    signature_confirmation_send(signature_id=signature.pk)
    return True


def signature_confirm(*, signature_id: int) -> Signature | None:
    """Confirm a signature; return it, or None when no such signature exists.

    Idempotent and race-free: only a missing confirmation time is set, so a link clicked twice
    (or by two tabs at once) counts once.
    """
    with transaction.atomic():
        confirmed = Signature.objects.filter(pk=signature_id, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
        signature = Signature.objects.select_related("petition").filter(pk=signature_id).first()
        if confirmed and signature is not None:
            if signature.consented:
                # The consent given when signing, now that the address is proved.
                supporter_subscribe(supporter_id=signature.supporter_id)
            petition_id = signature.petition_id
            transaction.on_commit(lambda: petition_count_add(petition_id))
    return signature


def signature_confirmation_email_send(*, signature_id: int) -> bool:
    """Send the confirmation email of a signature still unconfirmed; return whether it went."""
    signature = (
        Signature.objects.select_related("petition", "supporter")
        .filter(pk=signature_id, confirmed_at__isnull=True)
        .first()
    )
    if signature is None:
        return False  # confirmed meanwhile, or deleted: nothing to ask
    supporter = signature.supporter
    path = reverse(
        "campaigns:petition_confirm",
        kwargs={
            "slug": signature.petition.slug,
            "token": make_confirmation_token(signature_id=signature.pk),
        },
    )
    context = {
        "first_name": supporter.first_name,
        "petition_title": signature.petition.title,
        "confirm_url": f"{settings.SITE_URL}{path}",
        "valid_days": settings.RALLY_CONFIRMATION_MAX_AGE_DAYS,
    }
    # In the language the supporter signed in.
    with translation.override(supporter.language or settings.LANGUAGE_CODE):
        subject = render_to_string("campaigns/email/confirm_subject.txt", context)
        text = render_to_string("campaigns/email/confirm_body.txt", context)
        html = render_to_string("campaigns/email/confirm_body.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()), body=text, to=[supporter.email]
    )
    message.attach_alternative(html, "text/html")
    message.send()
    return True
