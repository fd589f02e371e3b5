"""Petitions and their signatures, a person's signatures, and the record signature helper."""

from api.filters import modified_date_filtered
from api.hal import ApiError, collection_page, endpoint, hal_response, not_found
from api.openapi import (
    DATE_TIME,
    PAGE_PARAMETERS,
    described_response,
    error_response,
    filter_parameter,
    operation,
    page_of,
    path_parameter,
    ref,
)
from api.representations.actions import petition_representation, signature_representation
from api.selectors import person_by_public_id, whole_number
from api.services.signatures import signature_helper_request_parse, signature_record_from_helper
from campaigns.counters import petition_count
from campaigns.models import Petition, Signature
from campaigns.signing import PetitionClosed, SigningUnavailable
from supporters.models import Supporter


def _petition(petition_id: str) -> Petition:
    petition = Petition.objects.filter(pk=whole_number(petition_id, "petition")).first()
    if petition is None:
        raise not_found("petition")
    return petition


def _represent_petition(petition: Petition, *, base_url: str) -> dict:
    return petition_representation(
        petition, base_url=base_url, total_signatures=petition_count(petition.pk)
    )


def petition_list(request):
    # A petition keeps no time of its last change: its modified_date is its making.
    petitions = modified_date_filtered(request, Petition.objects.all(), column="created_at")
    return hal_response(
        collection_page(
            request,
            petitions.order_by("-created_at", "-pk"),
            collection="petitions",
            path="petitions",
            represent=_represent_petition,
            base_url=request.base_url,
        )
    )


def petition_detail(request, petition_id: str):
    petition = _petition(petition_id)
    return hal_response(_represent_petition(petition, base_url=request.base_url))


def _signatures_page(request, signatures, *, path: str) -> dict:
    """One page of signatures, newest first, an erased supporter's left out."""
    # A signature's modified_date is its confirmation, or else its making
    # (api.representations.actions.signature_modified_at): filtering on its making is exact
    # for every signature confirmed when it was made, and close for the others.
    signatures = modified_date_filtered(request, signatures, column="created_at")
    return collection_page(
        request,
        signatures.exclude(supporter__status=Supporter.Status.ERASED)
        .select_related("supporter")
        .order_by("-created_at", "-pk"),
        collection="signatures",
        path=path,
        represent=signature_representation,
        base_url=request.base_url,
    )


def signature_list(request, petition_id: str):
    petition = _petition(petition_id)
    signatures = Signature.objects.filter(petition=petition)
    return hal_response(
        _signatures_page(request, signatures, path=f"petitions/{petition.pk}/signatures")
    )


def signature_record(request, petition_id: str):
    """The record signature helper: sign the petition as the person in the body, tag them."""
    petition = _petition(petition_id)
    helper_request = signature_helper_request_parse(request.json)
    try:
        recorded = signature_record_from_helper(
            petition=petition, request=helper_request, token_name=request.caller.name
        )
    except PetitionClosed:
        raise ApiError(409, "this petition is closed and no longer takes signatures") from None
    except SigningUnavailable:
        raise ApiError(
            503,
            "the signature could not be recorded just now: nothing was stored, try again",
            headers={"Retry-After": "10"},
        ) from None
    signature = recorded.signature
    request.written.extend([f"signature:{signature.pk}", f"person:{signature.supporter.uuid}"])
    body = signature_representation(signature, base_url=request.base_url)
    body["add_tags"] = list(helper_request.add_tags)
    return hal_response(body, status=201 if recorded.created else 200)


def signature_detail(request, petition_id: str, signature_id: str):
    petition = _petition(petition_id)
    signature = (
        Signature.objects.select_related("supporter")
        .filter(petition=petition, pk=whole_number(signature_id, "signature"))
        .first()
    )
    if signature is None:
        raise not_found("signature")
    if signature.supporter.status == Supporter.Status.ERASED:
        raise ApiError(410, "this signature's person was erased at their request")
    return hal_response(signature_representation(signature, base_url=request.base_url))


def person_signature_list(request, person_id: str):
    """A person's signatures (the person's own paths are api/views/people.py's)."""
    supporter = person_by_public_id(person_id)
    signatures = Signature.objects.filter(supporter_id=supporter.pk)
    return hal_response(
        _signatures_page(request, signatures, path=f"people/{supporter.uuid}/signatures")
    )


petitions_view = endpoint({"GET": petition_list})
petition_view = endpoint({"GET": petition_detail})
signatures_view = endpoint(
    {"GET": signature_list, "POST": signature_record}, helper_methods=frozenset({"POST"})
)
signature_view = endpoint({"GET": signature_detail})
person_signatures_view = endpoint({"GET": person_signature_list})


LINKS = ref("Links")
STRINGS = {"type": "array", "items": {"type": "string"}}
OPENAPI_SCHEMAS = {
    "Petition": {
        "type": "object",
        "required": [
            "identifiers",
            "origin_system",
            "name",
            "title",
            "description",
            "target",
            "browser_url",
            "created_date",
            "modified_date",
            "_links",
        ],
        "properties": {
            "identifiers": STRINGS,
            "origin_system": {"type": "string"},
            "name": {"type": "string", "description": "The petition's slug"},
            "title": {"type": "string"},
            "description": {"type": "string", "description": "HTML: the case for signing"},
            "petition_text": {"type": "string"},
            "target": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
            "browser_url": {"type": "string"},
            "languages_spoken": STRINGS,
            "total_signatures": {
                "type": "integer",
                "minimum": 0,
                "description": "Confirmed signatures, as the petition's page counts them",
            },
            "created_date": DATE_TIME,
            "modified_date": DATE_TIME,
            "rally:is_open": {"type": "boolean"},
            "rally:requires_confirmation": {"type": "boolean"},
            "rally:goal": {"type": "integer"},
            "_links": LINKS,
        },
    },
    "Signature": {
        "type": "object",
        "required": [
            "identifiers",
            "created_date",
            "modified_date",
            "action_network:referrer_data",
            "_links",
        ],
        "properties": {
            "identifiers": STRINGS,
            "origin_system": {"type": "string"},
            "created_date": DATE_TIME,
            "modified_date": DATE_TIME,
            "action_network:person_id": {
                "type": "string",
                "description": "Absent when the person was erased",
            },
            "action_network:petition_id": {"type": "string"},
            "action_network:referrer_data": {
                "type": "object",
                "properties": {"source": {"type": "string"}},
            },
            "add_tags": {
                "type": "array",
                "items": {"type": "string"},
                "description": "In the helper's answer: the tags it was asked to add",
            },
            "rally:confirmed": {"type": "boolean"},
            "rally:consented": {"type": "boolean"},
            "_links": LINKS,
        },
    },
    "RecordSignatureHelper": {
        "type": "object",
        "required": ["person"],
        "properties": {
            "person": {"allOf": [ref("PersonInput")], "required": ["email_addresses"]},
            "add_tags": {
                "type": "array",
                "maxItems": 100,
                "items": {"type": "string", "minLength": 1, "maxLength": 100},
            },
            "action_network:referrer_data": ref("ReferrerData"),
            "referrer_data": ref("ReferrerData"),
            "comments": {"type": "string", "description": "Accepted, not kept"},
            "triggers": {"type": "object", "description": "Accepted, not kept"},
            "identifiers": STRINGS,
            "origin_system": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "ReferrerData": {
        "type": "object",
        "properties": {
            "source": {"type": "string", "maxLength": 100},
            "referrer": {"type": "string", "description": "Accepted, not kept"},
            "website": {"type": "string", "maxLength": 500},
            "url": {"type": "string", "maxLength": 500},
        },
        "additionalProperties": False,
    },
}

_PETITION_ID = path_parameter("petition_id", "The petition's id, from its href")
_SIGNATURES_FILTER = filter_parameter("modified_date gt '2024-01-31'")
OPENAPI_PATHS = {
    "/petitions": {
        "get": operation(
            "List the petitions, open and closed, newest first",
            {"200": described_response("A page of petitions", page_of("petitions", "Petition"))},
            errors=("400", "401", "403", "404", "429"),
            parameters=[*PAGE_PARAMETERS, filter_parameter("modified_date gt '2024-01-31'")],
        )
    },
    "/petitions/{petition_id}": {
        "get": operation(
            "Read one petition, with its count of signatures",
            {"200": described_response("The petition", ref("Petition"))},
            errors=("401", "403", "404", "429"),
            parameters=[_PETITION_ID],
        )
    },
    "/petitions/{petition_id}/signatures": {
        "get": operation(
            "List a petition's signatures, newest first (an erased person's are left out)",
            {"200": described_response("A page of signatures", page_of("signatures", "Signature"))},
            errors=("400", "401", "403", "404", "429"),
            parameters=[_PETITION_ID, *PAGE_PARAMETERS, _SIGNATURES_FILTER],
        ),
        "post": operation(
            "The record signature helper: add or match the person by email and sign the "
            "petition as them, as the petition's form does; a new person is subscribed, a "
            "known one only when the body says status subscribed",
            {
                "201": described_response("The new signature", ref("Signature")),
                "200": described_response("The person had signed already", ref("Signature")),
                "409": error_response("The petition is closed"),
                "410": error_response("The address is an erased person's"),
                "503": error_response("Nothing was stored: try again"),
            },
            errors=("400", "401", "403", "404", "429"),
            parameters=[_PETITION_ID],
            body=ref("RecordSignatureHelper"),
        ),
    },
    "/petitions/{petition_id}/signatures/{signature_id}": {
        "get": operation(
            "Read one signature",
            {
                "200": described_response("The signature", ref("Signature")),
                "410": error_response("The person was erased"),
            },
            errors=("401", "403", "404", "429"),
            parameters=[
                _PETITION_ID,
                path_parameter("signature_id", "The signature's id, from its href"),
            ],
        )
    },
    "/people/{person_id}/signatures": {
        "get": operation(
            "List a person's signatures, newest first",
            {
                "200": described_response(
                    "A page of signatures", page_of("signatures", "Signature")
                ),
                "410": error_response("The person was erased"),
            },
            errors=("400", "401", "403", "404", "429"),
            parameters=[
                path_parameter("person_id", "The person's id, from their href"),
                *PAGE_PARAMETERS,
                _SIGNATURES_FILTER,
            ],
        )
    },
}
