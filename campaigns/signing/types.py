"""The value types at the signing boundary, and the errors a signer can meet."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError


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
