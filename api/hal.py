"""The HAL+JSON dialect of the API, as Action Network speaks it: answers, errors, pages, links.

Every view of the API is built by `endpoint`, which authenticates, checks the scope, applies
the rate limit, parses a JSON body, turns every failure into a JSON error with a 4xx, and
writes the audit entry of a request that could write.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import (
    EmptyResultSet,
    FullResultSet,
    ObjectDoesNotExist,
    RequestDataTooBig,
    ValidationError,
)
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from api.auth import Caller, caller_from_secret, rate_limit_wait
from api.models import ApiAuditEntry, ApiToken

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/hal+json"
TOKEN_HEADER = "OSDI-API-Token"  # noqa: S105 - a header name, not a secret
# The namespace of Rally's identifiers (`rally:<id>`) and of its own curie.
NAMESPACE = "rally"


class ApiError(Exception):
    """A request the API refuses: its status (4xx) and a message for the integrator."""

    def __init__(self, status: int, message: str, *, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


# Answers ------------------------------------------------------------------------------------


def hal_response(body: dict, *, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """Answer with a HAL+JSON body, compact (integrators parse it; nobody reads it raw)."""
    response = HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status=status,
        content_type=CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(status: int, message: str, *, headers: dict | None = None) -> HttpResponse:
    """Answer with Action Network's error shape, `{"error": "…"}`."""
    return hal_response({"error": message}, status=status, headers=headers)


def notice_response(message: str) -> HttpResponse:
    """Answer a DELETE as Action Network does: 200 with `{"notice": "…"}`."""
    return hal_response({"notice": message})


def iso_datetime(moment: datetime | None) -> str | None:
    """Format a time as Action Network does: UTC, seconds, a Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Links --------------------------------------------------------------------------------------


def api_root_path() -> str:
    """Return the API's path without the trailing slash, e.g. `/api/osdi/v1`."""
    return reverse("api:entry_point").rstrip("/")


def request_base_url(request: HttpRequest) -> str:
    """Return the API's absolute base URL as the caller reached it, e.g. `https://host/api/osdi/v1`.

    Hrefs take the request's own scheme and host, so a client follows them to where it came.
    """
    return f"{request.scheme}://{request.get_host()}{api_root_path()}"


def site_base_url() -> str:
    """Return the API's base URL under SITE_URL, for links made outside a request (webhooks)."""
    return f"{settings.SITE_URL}{api_root_path()}"


def link(href: str) -> dict:
    return {"href": href}


def curies(base_url: str) -> list[dict]:
    """Return the curies of every resource: osdi's relations and Rally's own."""
    return [
        {
            "name": "osdi",
            "href": "https://opensupporter.github.io/osdi-docs/{rel}",
            "templated": True,
        },
        {"name": NAMESPACE, "href": f"{base_url}/openapi.json#{{rel}}", "templated": True},
    ]


# Pages --------------------------------------------------------------------------------------


def page_parameters(request: HttpRequest) -> tuple[int, int]:
    """Read `page` and `per_page`; per_page above the maximum is lowered to it, as AN does."""
    page = _positive_int(request.GET.get("page", "1"), "page")
    per_page = _positive_int(
        request.GET.get("per_page", str(settings.RALLY_API_MAX_PAGE_SIZE)), "per_page"
    )
    return page, min(per_page, settings.RALLY_API_MAX_PAGE_SIZE)


def _positive_int(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise bad_request(f"{name} must be a whole number from 1, not {text[:40]!r}")
    return int(text)


# A collection ordered by id alone (people, tags) hands out `next` links that carry the last id
# of their page (`after`): the next page then starts right after it on the primary key's index,
# where a page number alone makes the database step over every row before the page (a second
# and more, deep into two million people). A page asked for by number is served by number.
KEYSET_ORDER = ("id",)
# Counts of collections at least this large are reused for COUNT_CACHE_SECONDS by the process:
# counting two million people takes longer than reading a page of them, and a script paging
# through reads the same total on every page. Smaller counts are always exact.
COUNT_CACHE_FROM = 10_000
COUNT_CACHE_SECONDS = 30


def collection_count(queryset) -> int:
    """Count a collection's rows; a large count may be up to COUNT_CACHE_SECONDS old."""
    try:
        sql = f"{queryset.model._meta.label}|{queryset.query}"
    except (EmptyResultSet, FullResultSet):  # a query that needs no counting of its own
        return queryset.count()
    key = "rally:api:count:" + hashlib.sha256(sql.encode(errors="replace")).hexdigest()
    count = cache.get(key)
    if count is None:
        count = queryset.count()
        if count >= COUNT_CACHE_FROM:
            cache.set(key, count, COUNT_CACHE_SECONDS)
    return count


def _after_parameter(request: HttpRequest) -> int | None:
    text = request.GET.get("after")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise bad_request(f"after must be an id from a next link, not {text[:40]!r}")
    return int(text)


def collection_page(
    request: HttpRequest,
    queryset,
    *,
    collection: str,
    path: str,
    represent: Callable,
    base_url: str,
) -> dict:
    """Return one page of a collection as HAL: `_embedded["osdi:<collection>"]` and its links.

    `path` is the collection's path under the base URL (e.g. "people"); `represent` turns a
    row into its representation given the base URL. The queryset must be ordered. A page past
    the last one is refused with a 404 naming the last page (page 1 of an empty collection is
    an empty page). The page is read with one row more than it shows, so that `next` is there
    exactly when another row is, and a page is past the end exactly when it is empty, whatever
    a count reused from earlier says; the last page needs no count at all.
    """
    page, per_page = page_parameters(request)
    keyset = tuple(queryset.query.order_by) == KEYSET_ORDER
    after = _after_parameter(request) if keyset else None
    start = (page - 1) * per_page
    if after is not None:
        rows = list(queryset.filter(pk__gt=after)[: per_page + 1])
    else:
        rows = list(queryset[start : start + per_page + 1])
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    if has_next:
        total_records = max(collection_count(queryset), start + len(rows) + 1)
    elif rows or page == 1:
        total_records = start + len(rows)
    else:
        total_records = collection_count(queryset)
    total_pages = max(1, -(-total_records // per_page))
    if not rows and page > 1:
        raise ApiError(
            404, f"page {page} is past the end: this collection has {total_pages} page(s)"
        )
    embedded = [represent(row, base_url=base_url) for row in rows]
    href = f"{base_url}/{path}"

    def page_href(number: int, *, after_id=None) -> str:
        query = {key: value for key, value in request.GET.items() if key not in ("page", "after")}
        query["page"] = str(number)
        if after_id is not None:
            query["after"] = str(after_id)
        return f"{href}?{urlencode(query)}"

    links: dict = {"self": link(page_href(page, after_id=after) if request.GET else href)}
    if has_next:
        last_id = getattr(rows[-1], "pk", None) if keyset else None
        links["next"] = link(page_href(page + 1, after_id=last_id))
    if page > 1:
        links["previous"] = link(page_href(page - 1))
    links[f"osdi:{collection}"] = [{"href": item["_links"]["self"]["href"]} for item in embedded]
    links["curies"] = curies(base_url)
    return {
        "total_pages": total_pages,
        "per_page": per_page,
        "page": page,
        "total_records": total_records,
        "_links": links,
        "_embedded": {f"osdi:{collection}": embedded},
    }


# Bodies -------------------------------------------------------------------------------------


def json_body(request: HttpRequest) -> dict:
    """Return the request's body as a JSON object, or refuse it with a 400 saying why."""
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the body is not JSON: send a JSON object") from None
    except RecursionError:
        raise bad_request("the body is nested too deeply") from None
    except RequestDataTooBig:
        raise ApiError(413, "the body is too large") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def refuse_unknown_fields(
    body: dict, allowed: set[str] | frozenset[str], *, where: str = ""
) -> None:
    """Refuse a body holding a field the resource does not have, naming it."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        place = f" in {where}" if where else ""
        raise bad_request(
            f"unknown field{'s' if len(unknown) > 1 else ''}{place}: {', '.join(unknown)}"
        )


_KINDS = {
    "string": (lambda value: isinstance(value, str), "a string"),
    "boolean": (lambda value: isinstance(value, bool), "true or false"),
    "object": (lambda value: isinstance(value, dict), "an object"),
    "strings": (
        lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        "a list of strings",
    ),
    "objects": (
        lambda value: isinstance(value, list) and all(isinstance(v, dict) for v in value),
        "a list of objects",
    ),
}


def refuse_wrong_kinds(body: dict, kinds: dict[str, str], *, where: str = "") -> None:
    """Refuse a field whose value is not of its kind ("string", "boolean", "object",
    "strings", "objects"), as the OpenAPI description states it; null is never a kind."""
    for field, kind in kinds.items():
        if field in body:
            is_kind, described = _KINDS[kind]
            if not is_kind(body[field]):
                place = f"{where}." if where else ""
                raise bad_request(f"{place}{field} must be {described}")


# Views --------------------------------------------------------------------------------------

SAFE_METHODS = frozenset({"GET", "HEAD"})


def endpoint(handlers: dict[str, Callable], *, helper_methods: frozenset[str] = frozenset()):
    """Build the view of one API path from a handler per HTTP method.

    Each handler is called as `handler(request, **url_kwargs)` with `request.caller` (Caller),
    `request.base_url` and, for POST and PUT, `request.json` set, and returns an HttpResponse;
    it may raise ApiError, Http404 or ObjectDoesNotExist, and adds the public ids of what it
    wrote to `request.written` for the audit. Scopes: read may GET, helpers may call only the
    methods in `helper_methods` (the signup helpers), write may call everything.
    """
    allowed = ", ".join(sorted(set(handlers) | ({"HEAD"} if "GET" in handlers else set())))

    @csrf_exempt
    @wraps(next(iter(handlers.values())))
    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        method = "GET" if request.method == "HEAD" else request.method
        caller = _authenticate(request)
        if isinstance(caller, HttpResponse):
            return caller
        request.caller = caller
        request.written = []
        if not caller.writes or method in SAFE_METHODS:
            return _answer(request, caller, method, handlers, helper_methods, allowed, kwargs)
        try:
            # The request's writes and its audit entry commit together: one commit, and no
            # write without its record. A refused request is rolled back whole, so nothing a
            # handler wrote before it found the problem stays; its audit entry is written alone.
            with transaction.atomic():
                response = _answer(
                    request, caller, method, handlers, helper_methods, allowed, kwargs
                )
                if response.status_code < 400:
                    _audit(request, caller, response.status_code)
                else:
                    transaction.set_rollback(True)
            if response.status_code >= 400:
                _audit(request, caller, response.status_code)
        except Exception:
            logger.exception("api request failed", extra={"path": request.path})
            return error_response(500, "internal error: the request was not carried out")
        return response

    return view


def _authenticate(request: HttpRequest) -> Caller | HttpResponse:
    secret = request.headers.get(TOKEN_HEADER, "").strip()
    if not secret:
        return error_response(401, f"missing {TOKEN_HEADER} header: send your API token in it")
    caller = caller_from_secret(secret)
    if caller is None:
        return error_response(401, "the API token is unknown or revoked")
    return caller


def _answer(request, caller, method, handlers, helper_methods, allowed, kwargs) -> HttpResponse:
    handler = handlers.get(method)
    if handler is None:
        return error_response(405, f"{method} is not allowed here", headers={"Allow": allowed})
    refusal = _scope_refusal(caller, method, helper_methods)
    if refusal:
        return error_response(403, refusal)
    wait = rate_limit_wait(caller, per_minute=settings.RALLY_API_RATE_LIMIT_PER_MINUTE)
    if wait:
        return error_response(
            429,
            f"rate limit of {settings.RALLY_API_RATE_LIMIT_PER_MINUTE} requests a minute "
            f"reached: retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    try:
        request.base_url = request_base_url(request)
        if method in ("POST", "PUT"):
            request.json = json_body(request)
        return handler(request, **kwargs)
    except ApiError as error:
        return error_response(error.status, error.message, headers=error.headers)
    except (Http404, ObjectDoesNotExist):
        return error_response(404, "not found")
    except ValidationError as error:
        return error_response(400, "; ".join(error.messages))
    except Exception:
        # A bug, not the caller's fault: logged in full, answered in JSON all the same.
        logger.exception("api request failed", extra={"path": request.path})
        return error_response(500, "internal error: the request was not carried out")


def _scope_refusal(caller: Caller, method: str, helper_methods: frozenset[str]) -> str:
    if caller.scope == ApiToken.Scope.WRITE:
        return ""
    if caller.scope == ApiToken.Scope.READ:
        return "" if method in SAFE_METHODS else "this token may only read (GET)"
    if method in helper_methods:
        return ""
    return (
        "this token may only use the signup helpers (POST people, POST petitions/<id>/signatures)"
    )


def _audit(request: HttpRequest, caller: Caller, status: int) -> None:
    ApiAuditEntry.objects.create(
        token_id=caller.token_id,
        token_name=caller.name,
        method=request.method[:8],
        path=request.path[:500],
        status=status,
        written=" ".join(request.written)[:1000] if status < 400 else "",
    )
