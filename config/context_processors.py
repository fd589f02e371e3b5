"""Template context every public page needs."""

from django.conf import settings


def language_links(request) -> dict:
    """Links to this same page in each language, keeping the rest of its query string.

    A personal link's token and a share ref survive a switch of language.
    """
    links = []
    for code, name in settings.LANGUAGES:
        query = request.GET.copy()
        query["lang"] = code
        links.append({"code": code, "name": name, "url": f"{request.path}?{query.urlencode()}"})
    return {"language_links": links}
