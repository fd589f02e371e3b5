"""Signed tokens that identify a supporter in a link, without a login and without their email.

Tokens carry only numeric ids and an HMAC made with SECRET_KEY, so a tampered or guessed token is
rejected and no token reveals who it belongs to. Each purpose has its own salt: an unsubscribe
token cannot be replayed as a petition link and vice versa.
"""

from django.core import signing

UNSUBSCRIBE_SALT = "rally.supporters.unsubscribe"


def make_unsubscribe_token(supporter_id: int) -> str:
    """Return the token for the one-click unsubscribe link of one supporter."""
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(supporter_id))


def read_unsubscribe_token(token: str) -> int | None:
    """Return the supporter id a valid unsubscribe token names, or None for a bad token."""
    try:
        value = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return int(value) if value.isdigit() else None
