"""Site-wide request handling of our own."""

from urllib.parse import unquote_to_bytes

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpResponse
from django.urls import Resolver404, resolve, reverse
from django.utils import translation
from django.utils.translation import gettext
from django_structlog.middlewares import RequestMiddleware


class LanguageFromQueryMiddleware:
    """Let a link choose the page language with ?lang=ru, and remember the choice.

    Django's LocaleMiddleware (which must come before this one) has already chosen from the
    language cookie or Accept-Language; a `lang` in the URL wins and is kept in that cookie, so
    a supporter who followed a Russian link stays in Russian through the thank-you page.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.languages = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request):
        chosen = request.GET.get("lang", "")[:8].lower()
        if chosen not in self.languages:
            return self.get_response(request)
        translation.activate(chosen)
        request.LANGUAGE_CODE = chosen
        response = self.get_response(request)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            chosen,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
        return response


# What django-csp's decorators (csp_update, csp_replace, csp_exempt, …) set on a response whose
# view changed its policy.
_RESPONSE_POLICY_ATTRIBUTES = tuple(
    f"_csp_{kind}{suffix}"
    for kind in ("config", "update", "replace", "exempt")
    for suffix in ("", "_ro")
)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's header, with the admin's allowances (RALLY_ADMIN_CSP_UPDATE) on its pages.

    The policy itself is CONTENT_SECURITY_POLICY; a view may still replace a directive with
    django-csp's decorators, as the embed pages do for frame-ancestors.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        # The headers of a response that changed no directive and used no nonce, by whether it
        # is the admin's: the same for every such response, so built once (what building them
        # for every response cost: docs/performance.md, "Where a signature's CPU goes").
        self._usual_headers: dict[bool, dict[str, str]] = {}
        setting_changed.connect(self._forget_usual_headers)

    def _forget_usual_headers(self, **kwargs) -> None:
        self._usual_headers.clear()

    def process_response(self, request, response):
        if not self._is_usual(request, response):
            return super().process_response(request, response)
        admin = request.path_info.startswith(self._admin_prefix())
        headers = self._usual_headers.get(admin)
        if headers is None:
            # django-csp's own answer for a blank response to this request, kept.
            probe = super().process_response(request, HttpResponse())
            headers = {name: probe[name] for name in (HEADER, HEADER_REPORT_ONLY) if name in probe}
            self._usual_headers[admin] = headers
        for name, value in headers.items():
            response[name] = value
        # As django-csp does once the header is written: a nonce asked for later is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    @staticmethod
    def _is_usual(request, response) -> bool:
        """Whether django-csp would give this response the same headers as a blank one."""
        return (
            getattr(request, "_csp_nonce", None) is None
            and not any(hasattr(response, name) for name in _RESPONSE_POLICY_ATTRIBUTES)
            and HEADER not in response
            and HEADER_REPORT_ONLY not in response
            and not (settings.DEBUG and response.status_code in (404, 500))
            and not (settings.CONTENT_SECURITY_POLICY or {}).get("EXCLUDE_URL_PREFIXES")
            and not (getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None) or {}).get(
                "EXCLUDE_URL_PREFIXES"
            )
        )

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith(self._admin_prefix()):
            update = dict(parts.update or {})
            for directive, sources in settings.RALLY_ADMIN_CSP_UPDATE.items():
                update[directive] = [*update.get(directive, ()), *sources]
            parts.update = update
        return parts

    def _admin_prefix(self) -> str:
        # Looked up on the first request, once the URLconf is loaded.
        if not hasattr(self, "_admin_path"):
            self._admin_path = reverse("admin:index")
        return self._admin_path


class FormEncodingMiddleware:
    """Refuse a form body that is not UTF-8 with a clear 400, before anything reads it.

    Django decodes such a body as Latin-1, or with U+FFFD for each bad percent-escape, and the
    form would store the mojibake as a supporter's name. Our pages all send UTF-8; what is
    not is a misconfigured integration or a robot. Must come before CsrfViewMiddleware, which
    reads the form.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method == "POST"
            and request.content_type == "application/x-www-form-urlencoded"
            and not _is_utf8_form(request.body)
        ):
            return HttpResponse(
                gettext(
                    "The form was not in UTF-8, so it could not be read and nothing was "
                    "stored. Please reload the page and send it again."
                ),
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


def _is_utf8_form(body: bytes) -> bool:
    # Percent-escapes decoded, "&" and "=" kept: those are ASCII and cannot break a sequence.
    try:
        unquote_to_bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# What a request line writes in place of a personal token.
REDACTED = "[token]"


# Paths that resolved to no token, which a request line may show as they are: resolving a path
# walks the URL patterns, and every request's line needs it (docs/performance.md, "Where a
# signature's CPU goes"). A path with a token is never kept here. Bounded, as paths are
# whatever clients ask for.
_TOKENLESS_PATHS: set[str] = set()
TOKENLESS_PATHS_KEPT = 4096


def loggable_path(path: str) -> str:
    """Return `path` with every URL parameter named like a token replaced by REDACTED.

    Unsubscribe, confirmation and tracked-link addresses carry a supporter's signed token, which
    acts for them: a log line must never hold one.
    """
    if path in _TOKENLESS_PATHS:
        return path
    try:
        match = resolve(path)
    except Resolver404:
        return path
    loggable = path
    for name, value in match.kwargs.items():
        if "token" in name and isinstance(value, str) and value:
            loggable = loggable.replace(value, REDACTED)
    if loggable == path and len(_TOKENLESS_PATHS) < TOKENLESS_PATHS_KEPT:
        _TOKENLESS_PATHS.add(path)
    return loggable


class RequestLogMiddleware(RequestMiddleware):
    """django-structlog's request lines, without personal tokens or the query string.

    The query string may carry a personal petition token or an email address; the path's
    tokens are replaced by loggable_path.
    """

    @staticmethod
    def format_request(request) -> str:
        return f"{request.method} {loggable_path(request.path_info)}"
