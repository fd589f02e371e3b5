"""The erased-address list: keyed hashes of addresses that may never come back by import.

An erased supporter's row keeps no email (privacy/services.py); only `email_hash` of it is
kept, in SuppressedEmail. Imports look each address up here, so a spreadsheet cannot put back
someone who asked to be forgotten; a fresh signature of their own makes a new supporter.
"""

import hashlib
import hmac

from django.conf import settings

from .models import SuppressedEmail


def email_hash(email: str) -> str:
    """Return the keyed hash (HMAC-SHA256, hex) of an address, normalised as Supporter stores it.

    Keyed with RALLY_SUPPRESSION_HASH_KEY, so nobody without the key can test a guessed address
    against the list.
    """
    normalised = email.strip().lower()
    key = settings.RALLY_SUPPRESSION_HASH_KEY.encode()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


def email_is_suppressed(email: str) -> bool:
    """Return whether the address was erased and may not be imported again."""
    return SuppressedEmail.objects.filter(email_hash=email_hash(email)).exists()


def email_suppress(email: str, *, reason: str = SuppressedEmail.Reason.ERASED) -> None:
    """Add an address's hash to the list; safe to call twice."""
    SuppressedEmail.objects.get_or_create(email_hash=email_hash(email), defaults={"reason": reason})
