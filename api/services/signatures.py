"""The record signature helper: a person and their signature of a petition, in one call.

Written through the same signing code as the petition's web form (campaigns.signing's
`signature_create`, batched by the group commit), so a signature from the API is the form's in
every rule: one per person and petition, blanks filled but nothing overwritten, a confirmation
email where the petition asks for one, counts and follow-ups queued on commit.

Consent follows Action Network's semantics for this helper, as the person signup helper does
(api/services/people.py): a person new to the list is subscribed; a known person keeps their
status unless the request says `"status": "subscribed"`, which brings back someone who
unsubscribed, bounced, complained or was sunset; an erased person's address cannot be added.
"""

from dataclasses import dataclass, replace

from django.utils import timezone

from api.hal import ApiError, bad_request, refuse_unknown_fields
from api.people_input import SUBSCRIBED, person_input, tag_names
from api.services.people import RESUBSCRIBABLE, api_consent_wording, tags_add_by_name
from campaigns.models import Petition, Signature
from campaigns.signing import SignatureInput, signature_create
from supporters.models import Supporter
from supporters.suppression import email_is_suppressed

# The fields of the helper's body. Action Network's `comments`, `triggers` (Rally sends the
# petition's own confirmation email where it asks for one, and nothing else), `identifiers`
# and `origin_system` are accepted and not kept, so that scripts written for Action Network
# run unchanged; any other field is refused.
HELPER_FIELDS = frozenset(
    {
        "person",
        "add_tags",
        "action_network:referrer_data",
        "referrer_data",
        "comments",
        "triggers",
        "identifiers",
        "origin_system",
    }
)
REFERRER_FIELDS = frozenset({"source", "referrer", "website", "url"})


@dataclass(frozen=True)
class SignatureHelperRequest:
    """A record signature helper's body, checked: who signs, with what tags, from where."""

    signer: SignatureInput
    subscribe: bool  # the body said "status": "subscribed"
    add_tags: tuple[str, ...]
    source: str
    website: str


@dataclass(frozen=True)
class HelperSignature:
    """What the helper did: the signature (its supporter loaded) and whether it is new."""

    signature: Signature
    created: bool


def signature_helper_request_parse(body: dict) -> SignatureHelperRequest:
    """Check a record signature helper's body; refuse it with a 400 saying what is wrong.

    Nothing is written: signature_record_from_helper records what this returns.
    """
    refuse_unknown_fields(body, HELPER_FIELDS)
    if "person" not in body:
        raise bad_request('the body needs a person: {"person": {"email_addresses": [...]}}')
    person = person_input(body["person"], email_required=True)
    if person.email_status not in (None, SUBSCRIBED):
        raise bad_request(
            f"the record signature helper takes only the status {SUBSCRIBED!r}: a signature "
            "never unsubscribes anyone"
        )
    referrer = body.get("action_network:referrer_data", body.get("referrer_data"))
    if referrer is None:
        referrer = {}
    if not isinstance(referrer, dict):
        raise bad_request("referrer_data must be an object")
    refuse_unknown_fields(referrer, REFERRER_FIELDS, where="referrer_data")
    return SignatureHelperRequest(
        signer=SignatureInput(
            email=person.email,
            first_name=person.given_name or "",
            last_name=person.family_name or "",
            country=person.country or "",
            postcode=person.postal_code or "",
            language=person.language or "",
        ),
        subscribe=person.email_status == SUBSCRIBED,
        add_tags=tuple(tag_names(body.get("add_tags"))),
        source=_referrer_text(referrer, "source", max_length=100),
        website=_referrer_text(referrer, "website", max_length=500)
        or _referrer_text(referrer, "url", max_length=500),
    )


def signature_record_from_helper(
    *, petition: Petition, request: SignatureHelperRequest, token_name: str
) -> HelperSignature:
    """Record the helper's signature through the signing code, tag the signer; say what it did.

    Raises PetitionClosed for a closed petition and SigningUnavailable when the database could
    not take it, as the form's signing does: nothing is stored then.
    """
    signer = request.signer
    if email_is_suppressed(signer.email):
        raise ApiError(
            410, "this address belongs to a person erased at their request: it cannot be added"
        )
    known = Supporter.objects.filter(email=signer.email).exists()
    if request.subscribe or not known:
        # The proof of consent names the integration: Rally showed no wording of its own.
        signer = replace(signer, consent=True, consent_wording=api_consent_wording(token_name))
    outcome = signature_create(
        petition=petition, signer=signer, source_url=request.website, source=request.source
    )
    signatures = Signature.objects.select_related("supporter")
    if outcome.signature_id is not None:
        signature = signatures.get(pk=outcome.signature_id)
    else:  # a second signature, whose id the batched write does not return
        signature = signatures.get(petition=petition, supporter__email=signer.email)
    # Where the petition waits for the address to be confirmed, so does the subscription.
    confirmed = signature.confirmed_at is not None
    if request.subscribe and confirmed and _resubscribe_suppressed(signature.supporter_id):
        signature.supporter.refresh_from_db()
    if request.add_tags:
        tags_add_by_name(supporter_id=signature.supporter_id, names=list(request.add_tags))
    return HelperSignature(signature=signature, created=outcome.created)


def _resubscribe_suppressed(supporter_id: int) -> bool:
    """Bring back a bounced, complained or sunset signer who asked for it, as signup does.

    Signing's consent lifts only an unsubscribe (supporters.services.CONSENT_LIFTS): the form
    cannot tell a person from someone typing their address. An integration that says
    "subscribed" explicitly is taken at its word, as by the person signup helper; the consent
    record was written with the signature.
    """
    return bool(
        Supporter.objects.filter(pk=supporter_id, status__in=RESUBSCRIBABLE).update(
            status=Supporter.Status.SUBSCRIBED,
            unsubscribed_at=None,
            suppressed_at=None,
            suppression_reason="",
            updated_at=timezone.now(),
        )
    )


def _referrer_text(referrer: dict, key: str, *, max_length: int) -> str:
    value = referrer.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"referrer_data.{key} must be a string")
    value = value.strip()
    if len(value) > max_length:
        raise bad_request(f"referrer_data.{key} is longer than {max_length} characters")
    if "\x00" in value:
        raise bad_request(f"referrer_data.{key} holds a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise bad_request(f"referrer_data.{key} is not valid Unicode text") from None
    return value
