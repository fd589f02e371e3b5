"""Messages: Rally's mailings, read-only, with their reports' figures as `statistics`."""

from api.filters import modified_date_filtered
from api.hal import collection_page, endpoint, hal_response, not_found
from api.openapi import (
    DATE_TIME,
    PAGE_PARAMETERS,
    described_response,
    filter_parameter,
    operation,
    page_of,
    path_parameter,
    ref,
)
from api.representations.actions import (
    STATISTICS_FIGURES,
    message_representation,
    messages_with_statistics,
)
from api.selectors import whole_number
from mailings.models import Mailing


def message_list(request):
    mailings = modified_date_filtered(request, Mailing.objects.all(), column="updated_at")
    return hal_response(
        collection_page(
            request,
            messages_with_statistics(mailings).order_by("-created_at", "-pk"),
            collection="messages",
            path="messages",
            represent=message_representation,
            base_url=request.base_url,
        )
    )


def message_detail(request, message_id: str):
    mailings = Mailing.objects.filter(pk=whole_number(message_id, "message"))
    mailing = messages_with_statistics(mailings).first()
    if mailing is None:
        raise not_found("message")
    return hal_response(message_representation(mailing, base_url=request.base_url))


messages_view = endpoint({"GET": message_list})
message_view = endpoint({"GET": message_detail})


OPENAPI_SCHEMAS = {
    "Message": {
        "type": "object",
        "required": [
            "identifiers",
            "origin_system",
            "name",
            "subject",
            "from",
            "status",
            "statistics",
            "targets",
            "created_date",
            "modified_date",
            "_links",
        ],
        "properties": {
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "origin_system": {"type": "string"},
            "name": {"type": "string"},
            "subject": {"type": "string"},
            "body": {"type": "string", "description": "HTML, with merge fields"},
            "from": {"type": "string", "description": "The sender's name"},
            "reply_to": {"type": "string"},
            "type": {"type": "string", "enum": ["email"]},
            "status": {
                "type": "string",
                "enum": ["draft", "scheduled", "sending", "sent", "cancelled"],
            },
            "sent_start_date": {**DATE_TIME, "nullable": True},
            "statistics": {
                "type": "object",
                "description": "From the mailing's report, counted as events arrive",
                "required": list(STATISTICS_FIGURES),
                "properties": {
                    name: {"type": "integer", "minimum": 0} for name in STATISTICS_FIGURES
                },
            },
            "targets": {
                "type": "array",
                "description": "The saved segment (query) the mailing went to, if any",
                "items": ref("Link"),
            },
            "created_date": DATE_TIME,
            "modified_date": DATE_TIME,
            "rally:status": {"type": "string"},
            "_links": ref("Links"),
        },
    },
}

OPENAPI_PATHS = {
    "/messages": {
        "get": operation(
            "List the mailings, newest first, with their statistics",
            {"200": described_response("A page of messages", page_of("messages", "Message"))},
            errors=("400", "401", "403", "404", "429"),
            parameters=[*PAGE_PARAMETERS, filter_parameter("modified_date gt '2024-01-31'")],
        )
    },
    "/messages/{message_id}": {
        "get": operation(
            "Read one mailing, with its statistics",
            {"200": described_response("The message", ref("Message"))},
            errors=("401", "403", "404", "429"),
            parameters=[path_parameter("message_id", "The message's id, from its href")],
        )
    },
}
