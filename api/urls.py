"""The OSDI API's paths. Each answers with and without a trailing slash, never redirecting:
Action Network's hrefs have none, some clients add one, and a redirected POST loses its body.
"""

from django.urls import re_path

from api.views import messages, openapi, people, petitions, queries, root, tags

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
    route(r"openapi\.json", openapi.openapi_view, name="openapi"),
    route("people", people.people_view, name="people"),
    route(r"people/(?P<person_id>[^/]+)", people.person_view, name="person"),
    route(
        r"people/(?P<person_id>[^/]+)/taggings", people.person_taggings_view, name="person_taggings"
    ),
    route("tags", tags.tags_view, name="tags"),
    route(r"tags/(?P<tag_id>[^/]+)", tags.tag_view, name="tag"),
    route(r"tags/(?P<tag_id>[^/]+)/taggings", tags.tag_taggings_view, name="tag_taggings"),
    route(
        r"tags/(?P<tag_id>[^/]+)/taggings/(?P<tagging_id>[^/]+)",
        tags.tagging_view,
        name="tagging",
    ),
    route("petitions", petitions.petitions_view, name="petitions"),
    route(r"petitions/(?P<petition_id>[^/]+)", petitions.petition_view, name="petition"),
    route(
        r"petitions/(?P<petition_id>[^/]+)/signatures", petitions.signatures_view, name="signatures"
    ),
    route(
        r"petitions/(?P<petition_id>[^/]+)/signatures/(?P<signature_id>[^/]+)",
        petitions.signature_view,
        name="signature",
    ),
    route(
        r"people/(?P<person_id>[^/]+)/signatures",
        petitions.person_signatures_view,
        name="person_signatures",
    ),
    route("messages", messages.messages_view, name="messages"),
    route(r"messages/(?P<message_id>[^/]+)", messages.message_view, name="message"),
    route("queries", queries.queries_view, name="queries"),
    route(r"queries/(?P<query_id>[^/]+)", queries.query_view, name="query"),
    # Last: any other path under the API answers in the API's dialect, not with an HTML page.
    re_path(r"^(?P<rest>.*)$", root.unknown_path_view, name="unknown_path"),
]
