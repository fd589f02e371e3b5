"""Signed tokens in petition URLs: personal links, and double opt-in confirmation links.

Personal links: a signed token that says who was invited, and by which mailing.

The mailing renderer makes these tokens for `{{ petition_url }}` (mailings/content/rendering.py);
`read_petition_token` is for the petition page, to greet the supporter and credit their
signature to the mailing that brought it.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from config.lib.signing import signer

from .models import Petition

PETITION_LINK_SALT = "rally.campaigns.petition_link"
# The query parameter (and the sign form's field) that carries a personal link's token: the
# petition page reads it, the mailing renderer and the click redirect write it.
PETITION_TOKEN_PARAMETER = "t"  # noqa: S105 -- a parameter name, not a secret


@dataclass(frozen=True)
class PetitionLink:
    supporter_id: int
    mailing_id: int | None
    # None in a token made before tokens named their petition: see petition_link_fits.
    petition_id: int | None = None


def make_petition_token(*, supporter_id: int, mailing_id: int | None, petition_id: int) -> str:
    """Return a token naming a supporter, the mailing that invited them and the petition it
    signs, never the email: a link forwarded or edited signs nobody onto another petition."""
    return signer(PETITION_LINK_SALT).sign(f"{supporter_id}-{mailing_id or 0}-{petition_id}")


def read_petition_token(token: str) -> PetitionLink | None:
    """Return what a valid token names, or None when it was tampered with or cut short."""
    try:
        parts = signer(PETITION_LINK_SALT).unsign(token).split("-")
    except signing.BadSignature:
        return None
    if len(parts) not in (2, 3) or not all(part.isascii() and part.isdigit() for part in parts):
        return None
    supporter_id, mailing_id, *petition_id = map(int, parts)
    return PetitionLink(supporter_id, mailing_id or None, *petition_id)


def petition_link_fits(link: PetitionLink, petition: Petition) -> bool:
    """Say whether a personal link may sign this petition: the one its token names.

    A token from before tokens named their petition came in its mailing's own message, as that
    mailing's {{ petition_url }}: it fits the mailing's petition alone.
    """
    if link.petition_id is not None:
        return link.petition_id == petition.pk
    return link.mailing_id is not None and petition.mailings.filter(pk=link.mailing_id).exists()


CONFIRMATION_SALT = "rally.campaigns.signature_confirmation"


def make_confirmation_token(*, signature_id: int) -> str:
    """Return a token that confirms one signature, valid RALLY_CONFIRMATION_MAX_AGE_DAYS.

    Single use comes from the confirmation itself: it only ever sets a missing timestamp.
    """
    return signing.TimestampSigner(salt=CONFIRMATION_SALT).sign(str(signature_id))


def read_confirmation_token(token: str) -> int | None:
    """Return the signature id a valid, unexpired token names; None otherwise."""
    max_age = settings.RALLY_CONFIRMATION_MAX_AGE_DAYS * 24 * 3600
    try:
        value = signing.TimestampSigner(salt=CONFIRMATION_SALT).unsign(token, max_age=max_age)
    except signing.BadSignature:  # tampered, cut short or expired (SignatureExpired)
        return None
    return int(value) if value.isdigit() else None
