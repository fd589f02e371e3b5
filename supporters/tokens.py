"""Signed tokens that identify a supporter in a link, without a login and without their email.

Tokens carry only numeric ids and an HMAC made with SECRET_KEY, so a tampered or guessed token is
rejected and no token reveals who it belongs to. Each purpose has its own salt: an unsubscribe
token cannot be replayed as a petition link and vice versa.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare

from config.lib.signing import signer

UNSUBSCRIBE_SALT = "rally.supporters.unsubscribe"
UNSUBSCRIBE_MAILTO_SALT = "rally.supporters.unsubscribe-mailto"
# Hex digits of the HMAC kept in a mailto token: 80 bits, beyond guessing, and short enough
# that "unsubscribe+<id>-<digest>" stays within the 64 characters a local part may have.
MAILTO_DIGEST_LENGTH = 20
# A mailto token as it may come back: mail systems may change the case of a local part.
_MAILTO_TOKEN_PATTERN = rf"[0-9]{{1,19}}-[0-9a-fA-F]{{{MAILTO_DIGEST_LENGTH}}}"
_MAILTO_TOKEN = re.compile(_MAILTO_TOKEN_PATTERN, re.ASCII)
_MAILTO_TOKEN_IN_ADDRESS = re.compile(rf"\+({_MAILTO_TOKEN_PATTERN})@", re.ASCII)


@dataclass(frozen=True)
class UnsubscribeLink:
    """Who an unsubscribe token names, and the mailing whose message carried it."""

    supporter_id: int
    # None for a token made outside a mailing, or before tokens named their mailing.
    mailing_id: int | None = None


def make_unsubscribe_token(supporter_id: int, mailing_id: int | None = None) -> str:
    """Return the token of one supporter's one-click unsubscribe link, in a mailing's message.

    `<supporter id>-<mailing id>` signed; a token of a supporter alone is `<supporter id>`
    signed, as every token was before they named the mailing, and those still work.
    """
    value = f"{supporter_id}-{mailing_id}" if mailing_id else str(supporter_id)
    return signer(UNSUBSCRIBE_SALT).sign(value)


def read_unsubscribe_link(token: str) -> UnsubscribeLink | None:
    """Return what a valid unsubscribe token names, or None for a bad token."""
    try:
        value = signer(UNSUBSCRIBE_SALT).unsign(token)
    except signing.BadSignature:
        return None
    supporter_part, _, mailing_part = value.partition("-")
    if not _is_number(supporter_part) or (mailing_part and not _is_number(mailing_part)):
        return None
    return UnsubscribeLink(int(supporter_part), int(mailing_part) if mailing_part else None)


def read_unsubscribe_token(token: str) -> int | None:
    """Return the supporter id a valid unsubscribe token names, or None for a bad token."""
    link = read_unsubscribe_link(token)
    return link.supporter_id if link else None


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def make_unsubscribe_mailto_token(supporter_id: int) -> str:
    """Return the token the mailto: unsubscribe address of one supporter carries.

    `<id>-<hex digest>`: digits, lower-case hex and a hyphen only, so it survives mail systems
    that lower-case addresses or allow nothing else in a local part, where a Signer token
    (mixed case, a colon) would not.
    """
    return f"{supporter_id}-{_mailto_digest(supporter_id, settings.SECRET_KEY)}"


def read_unsubscribe_mailto_token(token: str) -> int | None:
    """Return the supporter id a valid mailto token names, in any case; None for a bad token.

    Tokens made with a key in SECRET_KEY_FALLBACKS still count, as Django's signing allows,
    so rotating the key does not break the unsubscribe addresses of mail already sent.
    """
    if not _MAILTO_TOKEN.fullmatch(token):
        return None
    supporter_part, _, digest = token.lower().partition("-")
    supporter_id = int(supporter_part)
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        if constant_time_compare(digest, _mailto_digest(supporter_id, secret)):
            return supporter_id
    return None


def unsubscribe_mailto_address(supporter_id: int) -> str:
    """Return the address a supporter writes to to unsubscribe: UNSUBSCRIBE_MAILTO plus a token.

    `unsubscribe@example.org` becomes `unsubscribe+<token>@example.org` (sub-addressing, which
    inbound ESPs deliver to the mailbox before the `+`).
    """
    local, _, domain = settings.UNSUBSCRIBE_MAILTO.rpartition("@")
    return f"{local}+{make_unsubscribe_mailto_token(supporter_id)}@{domain}"


def find_unsubscribe_mailto_tokens(text: str) -> set[int]:
    """Return the supporter ids that valid tokens in addresses `…+<token>@…` in `text` name.

    `text` may be a bare address or a whole header (`"Rally" <unsubscribe+…@…>, …`): each
    token is checked, and one that does not verify is passed over.
    """
    tokens = _MAILTO_TOKEN_IN_ADDRESS.findall(text)
    found = (read_unsubscribe_mailto_token(token) for token in tokens)
    return {supporter_id for supporter_id in found if supporter_id is not None}


def unsubscribe_mailto_address_for_token(unsubscribe_token: str) -> str:
    """Return the mailto: unsubscribe address of the supporter an unsubscribe token names.

    For a message being built from the merge fields just made for it: the token is fresh, so
    its signature is not checked again, which would cost as much as the rest of the address
    (a Signer token is `<id>:<signature>` or `<id>-<mailing id>:<signature>`). A token that
    names nobody gives UNSUBSCRIBE_MAILTO as it is.
    """
    supporter_part = unsubscribe_token.partition(":")[0].partition("-")[0]
    if not (supporter_part.isascii() and supporter_part.isdigit()):
        return settings.UNSUBSCRIBE_MAILTO
    return unsubscribe_mailto_address(int(supporter_part))


def _mailto_digest(supporter_id: int, secret: str) -> str:
    digest = hmac.new(_mailto_key(secret), str(supporter_id).encode(), hashlib.sha256)
    return digest.hexdigest()[:MAILTO_DIGEST_LENGTH]


@lru_cache(maxsize=4)
def _mailto_key(secret: str) -> bytes:
    """Derive the mailto tokens' key from a secret as Django's salted_hmac does, once a secret.

    Every bulk message makes a token, and deriving the key is half the cost of one.
    """
    return hashlib.sha256((UNSUBSCRIBE_MAILTO_SALT + secret).encode()).digest()
