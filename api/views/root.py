"""The API entry point (AEP): what the API is, and a link to each collection and helper."""

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt

from api.hal import curies, endpoint, error_response, hal_response, link
from api.openapi import described_response, operation, ref

# The OSDI version Action Network conforms to, which Rally's dialect follows.
OSDI_VERSION = "1.1.1"


def entry_point(request):
    base = request.base_url
    return hal_response(
        {
            "motd": "Welcome to Rally's OSDI API, in Action Network's dialect.",
            "vendor_name": "Rally",
            "product_name": "Rally",
            "osdi_version": OSDI_VERSION,
            "namespace": "rally",
            "max_pagesize": settings.RALLY_API_MAX_PAGE_SIZE,
            "_links": {
                "self": link(base),
                "docs": link(f"{base}/openapi.json"),
                "osdi:people": link(f"{base}/people"),
                "osdi:tags": link(f"{base}/tags"),
                "osdi:petitions": link(f"{base}/petitions"),
                "osdi:messages": link(f"{base}/messages"),
                "osdi:queries": link(f"{base}/queries"),
                "osdi:person_signup_helper": link(f"{base}/people"),
                "curies": curies(base),
            },
        }
    )


entry_point_view = endpoint({"GET": entry_point})


@csrf_exempt
def unknown_path_view(request, rest: str = ""):
    """Answer a path the API does not have in its own dialect: a JSON 404, never a page."""
    return error_response(
        404, f"the API has no path {request.path[:200]!r}: start at its entry point"
    )


OPENAPI_SCHEMAS = {
    "EntryPoint": {
        "type": "object",
        "required": [
            "motd",
            "max_pagesize",
            "vendor_name",
            "product_name",
            "osdi_version",
            "_links",
        ],
        "properties": {
            "motd": {"type": "string"},
            "max_pagesize": {"type": "integer"},
            "vendor_name": {"type": "string"},
            "product_name": {"type": "string"},
            "osdi_version": {"type": "string"},
            "namespace": {"type": "string"},
            "_links": {"$ref": "#/components/schemas/Links"},
        },
    }
}
OPENAPI_PATHS = {
    "/": {
        "get": operation(
            "The API entry point: what it is, and a link to each collection and helper",
            {"200": described_response("The entry point", ref("EntryPoint"))},
        )
    }
}
