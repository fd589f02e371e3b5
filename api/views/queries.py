"""Queries: the saved segments, read-only, each with the count of its mailable members."""

from django.core.cache import cache

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
from api.representations.actions import query_representation
from api.selectors import whole_number
from mailings.segments import segment_count
from supporters.models import Segment

# How long a process reuses a segment's count. A count over a large list takes a moment and a
# page holds many segments: a client paging through them, or polling one, gets a count made a
# minute ago at most. Saving the segment (its updated_at) makes a new key, counted afresh.
COUNT_CACHE_SECONDS = 60


def segment_count_recent(segment: Segment) -> int:
    """Return the segment's count as made within COUNT_CACHE_SECONDS, or count it now."""
    key = f"rally:api:segment-count:{segment.pk}:{segment.updated_at.timestamp()}"
    count = cache.get(key)
    if count is None:
        count = segment_count(segment)
        cache.set(key, count, COUNT_CACHE_SECONDS)
    return count


def _represent(segment: Segment, *, base_url: str) -> dict:
    return query_representation(segment, base_url=base_url, count=segment_count_recent(segment))


def query_list(request):
    segments = modified_date_filtered(request, Segment.objects.all(), column="updated_at")
    return hal_response(
        collection_page(
            request,
            segments.order_by("name", "pk"),
            collection="queries",
            path="queries",
            represent=_represent,
            base_url=request.base_url,
        )
    )


def query_detail(request, query_id: str):
    segment = Segment.objects.filter(pk=whole_number(query_id, "query")).first()
    if segment is None:
        raise not_found("query")
    return hal_response(_represent(segment, base_url=request.base_url))


queries_view = endpoint({"GET": query_list})
query_view = endpoint({"GET": query_detail})


OPENAPI_SCHEMAS = {
    "Query": {
        "type": "object",
        "required": [
            "identifiers",
            "origin_system",
            "name",
            "description",
            "count",
            "created_date",
            "modified_date",
            "_links",
        ],
        "properties": {
            "identifiers": {"type": "array", "items": {"type": "string"}},
            "origin_system": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "count": {
                "type": "integer",
                "minimum": 0,
                "description": "Mailable supporters in the segment, counted within a minute",
            },
            "browser_url": {"type": "string"},
            "rally:match": {"type": "string", "enum": ["all", "any"]},
            "created_date": DATE_TIME,
            "modified_date": DATE_TIME,
            "_links": ref("Links"),
        },
    },
}

OPENAPI_PATHS = {
    "/queries": {
        "get": operation(
            "List the saved segments by name, each with its count",
            {"200": described_response("A page of queries", page_of("queries", "Query"))},
            errors=("400", "401", "403", "404", "429"),
            parameters=[*PAGE_PARAMETERS, filter_parameter("modified_date gt '2024-01-31'")],
        )
    },
    "/queries/{query_id}": {
        "get": operation(
            "Read one saved segment, with its count",
            {"200": described_response("The query", ref("Query"))},
            errors=("401", "403", "404", "429"),
            parameters=[path_parameter("query_id", "The query's id, from its href")],
        )
    },
}
