"""Signing a petition, from the public `signature_create` down to the rows it writes.

- types.py: the value types at the boundary (SignatureInput, …) and the errors a signer meets.
- rules.py: the rules every writer obeys, stated once (with their SQL twins).
- record.py: `signature_create` and `signatures_record`, which picks a writer and queues the
  follow-ups (counts, confirmation emails). Concurrent signers of one process share a
  transaction through config/lib/group_commit.py.
- portable.py: the writer for any database, through the ORM, one request after another.
- postgres.py and sign_batch.sql: the writer for PostgreSQL, a whole batch in one statement.
- confirm.py: `signature_confirm`, when an address is proved.
Confirmation emails are campaigns/confirmation.py.
"""

from .confirm import signature_confirm
from .record import signature_create, signatures_record
from .types import (
    PetitionClosed,
    SignatureInput,
    SignatureOutcome,
    SignatureRequest,
    SigningUnavailable,
)

__all__ = [
    "PetitionClosed",
    "SignatureInput",
    "SignatureOutcome",
    "SignatureRequest",
    "SigningUnavailable",
    "signature_confirm",
    "signature_create",
    "signatures_record",
]
