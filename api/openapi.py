"""The OpenAPI 3 description of the API, gathered from the views modules.

Each module of api/views may define `OPENAPI_PATHS` (path under the API's root → path item)
and `OPENAPI_SCHEMAS` (component name → schema); this module adds the shared parts (errors,
links, pages, the token scheme) and serves the whole at `openapi.json`. A views module is
found by being in the package: adding one adds its paths.
"""

import importlib
import pkgutil

import api.views

ERROR_RESPONSES = {
    "400": "The request is malformed: a body that is not JSON, an unknown field, a bad filter",
    "401": "The OSDI-API-Token header is missing, or the token is unknown or revoked",
    "403": "The token's scope does not allow this",
    "404": "Nothing has this id, or the page is past the end",
    "429": "The token's rate limit is reached: retry after Retry-After seconds",
}

# How every created_date and modified_date is described: the API writes them in UTC, with a Z.
DATE_TIME = {"type": "string", "format": "date-time"}

SHARED_SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Notice": {
        "type": "object",
        "required": ["notice"],
        "properties": {"notice": {"type": "string"}},
    },
    "Link": {
        "type": "object",
        "required": ["href"],
        "properties": {"href": {"type": "string"}, "templated": {"type": "boolean"}},
    },
    "Links": {
        "type": "object",
        "description": "HAL links by relation: a link, or a list of links (curies, items)",
        "additionalProperties": {
            "oneOf": [
                {"$ref": "#/components/schemas/Link"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
            ]
        },
    },
}


def error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/hal+json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def described_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/hal+json": {"schema": schema}}}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(collection: str, item_schema: str) -> dict:
    """Return the schema of one page of a collection whose items are `item_schema`."""
    return {
        "type": "object",
        "required": ["page", "per_page", "total_pages", "total_records", "_links", "_embedded"],
        "properties": {
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
            "total_pages": {"type": "integer", "minimum": 1},
            "total_records": {"type": "integer", "minimum": 0},
            "_links": ref("Links"),
            "_embedded": {
                "type": "object",
                "required": [f"osdi:{collection}"],
                "properties": {f"osdi:{collection}": {"type": "array", "items": ref(item_schema)}},
            },
        },
    }


PAGE_PARAMETERS = [
    {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 999999999},
        "description": "The page, from 1; a page past the last is a 404",
    },
    {
        "name": "per_page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 999999999},
        "description": "Items per page; more than max_pagesize gives max_pagesize",
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": 999999999999999999},
        "description": "Set by the next link of a collection ordered by id: the page starts "
        "after this id (api/hal.py, KEYSET_ORDER); other collections ignore it",
    },
]


def filter_parameter(example: str) -> dict:
    return {
        "name": "filter",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": f"An OData filter, e.g. {example}; anything else is a 400",
    }


def operation(
    summary: str,
    responses: dict,
    *,
    errors: tuple[str, ...] = ("401", "403", "429"),
    parameters: list | None = None,
    body: dict | None = None,
) -> dict:
    """Return an operation answering `responses` (status → response) and the given errors."""
    all_responses = dict(responses)
    for status in errors:
        all_responses.setdefault(status, error_response(ERROR_RESPONSES.get(status, status)))
    result = {"summary": summary, "responses": all_responses}
    if parameters:
        result["parameters"] = parameters
    if body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return result


def path_parameter(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def openapi_document(*, base_url: str) -> dict:
    """Return the OpenAPI document of the API served at `base_url`."""
    paths: dict = {}
    schemas: dict = dict(SHARED_SCHEMAS)
    for module_info in sorted(pkgutil.iter_modules(api.views.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"api.views.{module_info.name}")
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Rally OSDI API",
            "version": "1",
            "description": (
                "Open Supporter Data Interface in Action Network's dialect: HAL+JSON, a token "
                "in the OSDI-API-Token header. Hrefs end in the resource's id with no "
                "trailing slash; every path answers with a trailing slash too."
            ),
        },
        "servers": [{"url": base_url}],
        "security": [{"OSDIToken": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "OSDIToken": {"type": "apiKey", "in": "header", "name": "OSDI-API-Token"}
            },
            "schemas": schemas,
        },
    }
