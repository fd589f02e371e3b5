"""The OSDI API's paths. Each answers with and without a trailing slash, never redirecting:
Action Network's hrefs have none, some clients add one, and a redirected POST loses its body.
"""

from django.urls import re_path

from api.views import root

app_name = "api"


def route(pattern: str, view, name: str):
    """Route `pattern` (a regex under the API's root, e.g. `people/(?P<person_id>[^/]+)`)
    with and without a trailing slash."""
    return re_path(rf"^{VERSION}/{pattern}/?$", view, name=name)


# config/urls.py includes this file at api/osdi/, so that the entry point, too, answers with
# and without its trailing slash.
VERSION = "v1"

urlpatterns = [
    re_path(rf"^{VERSION}/?$", root.entry_point_view, name="entry_point"),
    # Petitions and signatures (api/views/petitions.py), messages (api/views/messages.py) and
    # queries (api/views/queries.py) are routed here, each by its own module's author.
]
