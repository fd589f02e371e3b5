"""Recording signatures: the public `signature_create`, batched by the group commit."""

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from functools import partial

from django.db import InterfaceError, OperationalError, connection, transaction

from campaigns.confirmation import signature_confirmation_send
from campaigns.counters import petition_count_add
from campaigns.models import Petition, Signature
from campaigns.signals import signatures_created, signatures_credited
from config.lib.group_commit import BatchAbandoned, GroupCommit
from supporters.services import truncate_ip

from . import rules
from .portable import signatures_write_portable
from .postgres import signatures_write_postgres
from .types import (
    PetitionClosed,
    SignatureInput,
    SignatureOutcome,
    SignatureRequest,
    SigningUnavailable,
)

logger = logging.getLogger(__name__)

Writer = Callable[[Sequence[SignatureRequest]], list[SignatureOutcome]]


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
    config/lib/group_commit.py), which is what lets a surge of signers through.
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
    requests = [_with_normalised_email(request) for request in requests]
    # A batch that credits a mailing is written in one transaction with what the mailing's
    # report counts of it (the `signatures_credited` signal); any other keeps PostgreSQL's
    # write in one statement, with no BEGIN and COMMIT to wait for.
    credits_a_mailing = any(request.mailing_id for request in requests)
    with transaction.atomic() if credits_a_mailing else nullcontext():
        outcomes = signature_writer()(requests)
        credited = [
            outcome.signature_id
            for request, outcome in zip(requests, outcomes, strict=True)
            if outcome.created and request.mailing_id and outcome.signature_id is not None
        ]
        if credited:
            signatures_credited.send(sender=Signature, signature_ids=credited)
        created = [outcome.signature_id for outcome in outcomes if outcome.created]
        if created:
            signatures_created.send(sender=Signature, signature_ids=created)
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


def _with_normalised_email(request: SignatureRequest) -> SignatureRequest:
    """Return the request with its email as Supporter stores it, which both writers match on."""
    email = rules.normalised_email(request.signer.email)
    if email == request.signer.email:
        return request
    return replace(request, signer=replace(request.signer, email=email))


def signature_writer() -> Writer:
    """Return the writer for this database: one statement on PostgreSQL, the ORM elsewhere."""
    if connection.vendor == "postgresql":
        return signatures_write_postgres
    return signatures_write_portable


_signing: GroupCommit[SignatureRequest, SignatureOutcome] = GroupCommit(
    signatures_record, max_batch=100
)
