"""Site-wide request handling of our own."""

from django.conf import settings
from django.utils import translation


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
