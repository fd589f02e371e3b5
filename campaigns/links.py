"""Personal petition links: a signed token that says who was invited, and by which mailing.

The mailing renderer makes these tokens for `{{ petition_url }}` (mailings/rendering.py);
`read_petition_token` is for the petition page, to greet the supporter and credit their
signature to the mailing that brought it.
"""

from dataclasses import dataclass

from django.core import signing

PETITION_LINK_SALT = "rally.campaigns.petition_link"
_signer = signing.Signer(salt=PETITION_LINK_SALT)


@dataclass(frozen=True)
class PetitionLink:
    supporter_id: int
    mailing_id: int | None


def make_petition_token(*, supporter_id: int, mailing_id: int | None) -> str:
    """Return a token naming a supporter (and the mailing that invited them), never the email."""
    return _signer.sign(f"{supporter_id}-{mailing_id or 0}")


def read_petition_token(token: str) -> PetitionLink | None:
    """Return what a valid token names, or None when it was tampered with or cut short."""
    try:
        supporter_id, _, mailing_id = _signer.unsign(token).partition("-")
    except signing.BadSignature:
        return None
    if not (supporter_id.isdigit() and mailing_id.isdigit()):
        return None
    return PetitionLink(int(supporter_id), int(mailing_id) or None)
