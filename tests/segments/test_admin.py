"""The segments' admin: count.json, the live count of the form, the form's checks, permissions."""

import html
import json

import pytest

from supporters.models import Segment, SegmentCondition, Supporter
from tests.admin_users import staff_client
from tests.factories import PetitionFactory, SignatureFactory, SupporterFactory, TagFactory

pytestmark = pytest.mark.django_db

Kind = SegmentCondition.Kind
CHANGE = ("supporters.view_segment", "supporters.change_segment")


@pytest.fixture
def people():
    """Three mailable supporters in English (one tagged), two in Russian, one unsubscribed."""
    tag = TagFactory(name="volunteer")
    english = [SupporterFactory(language="en") for _ in range(3)]
    english[0].tags.add(tag)
    russian = [SupporterFactory(language="ru") for _ in range(2)]
    SupporterFactory(language="ru", status=Supporter.Status.UNSUBSCRIBED)
    return {"tag": tag, "english": english, "russian": russian}


@pytest.fixture
def russian_speakers(people):
    segment = Segment.objects.create(name="Russian speakers")
    segment.conditions.create(kind=Kind.LANGUAGE, language="ru")
    return segment


def count_url(segment=None) -> str:
    if segment is None:
        return "/admin/supporters/segment/count.json"
    return f"/admin/supporters/segment/{segment.pk}/count.json"


def form_query(*conditions: dict, match: str = "all", initial: int = 0) -> dict:
    """The fields the change form sends: match, and the conditions' inline formset."""
    query = {
        "match": match,
        "conditions-TOTAL_FORMS": str(len(conditions)),
        "conditions-INITIAL_FORMS": str(initial),
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "1000",
    }
    for number, condition in enumerate(conditions):
        for name, value in condition.items():
            query[f"conditions-{number}-{name}"] = value
    return query


def test_count_json_counts_the_saved_segments_mailable_members(client, russian_speakers):
    staff_client(client, "supporters.view_segment")
    response = client.get(count_url(russian_speakers))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"count": 2}


def test_a_missing_segment_is_a_404_in_json(client):
    staff_client(client, "supporters.view_segment")
    response = client.get("/admin/supporters/segment/987654/count.json")
    assert response.status_code == 404
    assert response.json() == {"error": "There is no segment 987654."}


def test_the_count_needs_the_view_permission(client, russian_speakers):
    staff_client(client, "supporters.view_tag")
    for query in ({}, form_query({"kind": "language", "language": "en"})):
        response = client.get(count_url(russian_speakers), query)
        assert response.status_code == 403
        assert "error" in response.json()
    client.logout()
    response = client.get(count_url(russian_speakers))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_only_get_is_answered(client, russian_speakers):
    staff_client(client, *CHANGE)
    assert client.post(count_url(russian_speakers)).status_code == 405


def test_the_form_fields_are_counted_before_they_are_saved(client, people, russian_speakers):
    staff_client(client, "supporters.view_segment", "supporters.add_segment")
    english = form_query({"kind": "language", "language": "en"})
    assert client.get(count_url(), english).json() == {"count": 3}
    tagged_or_russian = form_query(
        {"kind": "has_tag", "tag": str(people["tag"].pk)},
        {"kind": "language", "language": "ru"},
        match="any",
    )
    assert client.get(count_url(), tagged_or_russian).json() == {"count": 3}
    not_tagged = form_query({"kind": "has_tag", "tag": str(people["tag"].pk), "negate": "on"})
    assert client.get(count_url(), not_tagged).json() == {"count": 4}
    # Nothing was saved by counting.
    assert Segment.objects.count() == 1
    assert SegmentCondition.objects.count() == 1


def test_the_change_forms_fields_replace_the_saved_conditions(client, russian_speakers):
    staff_client(client, *CHANGE)
    saved = russian_speakers.conditions.get()
    edited = form_query(
        {"id": str(saved.pk), "segment": str(russian_speakers.pk), "kind": "language",
         "language": "en"},
        initial=1,
    )  # fmt: skip
    assert client.get(count_url(russian_speakers), edited).json() == {"count": 3}
    deleted = form_query(
        {"id": str(saved.pk), "segment": str(russian_speakers.pk), "kind": "language",
         "language": "ru", "DELETE": "on"},
        initial=1,
    )  # fmt: skip
    assert client.get(count_url(russian_speakers), deleted).json() == {"count": 5}
    # Match alone keeps the saved conditions.
    assert client.get(count_url(russian_speakers), {"match": "any"}).json() == {"count": 2}
    assert russian_speakers.conditions.get().language == "ru"


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"kind": "has_tag"}, "condition 1, tag: A “Has tag” condition needs a tag."),
        (
            {"kind": "language", "language": "ru", "source": "import"},
            "condition 1, source: A “Language” condition does not use a source: leave it empty.",
        ),
        (
            {"kind": "received", "days": "0"},
            "condition 1, days: Ensure this value is greater than or equal to 1.",
        ),
        (
            {"kind": "opened", "days": "30", "language": "ru"},
            "condition 1, language: A “Opened a mailing” condition does not use a language",
        ),
        (
            {"kind": "received", "days": "999999999"},
            "condition 1, days: Ensure this value is less than or equal to 36500.",
        ),
        ({"kind": "clicked", "days": "1e9"}, "condition 1, days: Enter a whole number."),
        ({"kind": "language", "language": "xx"}, "condition 1, language: Select a valid choice"),
        ({"kind": "no_such_kind"}, "condition 1, kind: Select a valid choice"),
        ({"kind": "has_tag", "tag": "abc"}, "condition 1, tag: Select a valid choice"),
        ({"kind": "signed_petition", "petition": "99999999"}, "condition 1, petition: Select"),
        ({"kind": "engagement_tier"}, "needs a tier of engagement"),
        ({"kind": "subscribed_before", "date": "31/31/2026"}, "condition 1, date: Enter a valid"),
    ],
)
def test_a_condition_that_does_not_fit_its_kind_is_a_400_that_says_why(
    client, people, condition, message
):
    staff_client(client, "supporters.view_segment")
    response = client.get(count_url(), form_query(condition))
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    "query",
    [
        {"match": "most"},
        {**form_query(), "conditions-TOTAL_FORMS": "many"},
        {"conditions-TOTAL_FORMS": "1"},
    ],
)
def test_a_malformed_form_is_a_400_never_a_500(client, query):
    staff_client(client, "supporters.view_segment")
    response = client.get(count_url(), query)
    assert response.status_code == 400
    assert response.json()["error"]


def test_the_admin_saves_a_segment_and_refuses_a_condition_missing_its_field(client, people):
    staff_client(client, "supporters.view_segment", "supporters.add_segment", username="ann")
    petition = PetitionFactory()
    SignatureFactory(petition=petition, supporter=people["english"][1])
    refused = client.post(
        "/admin/supporters/segment/add/",
        {"name": "Signers", "description": "", **form_query({"kind": "signed_petition"})},
    )
    assert refused.status_code == 200
    assert "A “Signed petition” condition needs a petition." in html.unescape(
        refused.content.decode()
    )
    assert not Segment.objects.exists()
    saved = client.post(
        "/admin/supporters/segment/add/",
        {
            "name": "Signers",
            "description": "",
            **form_query({"kind": "signed_petition", "petition": str(petition.pk), "days": "30"}),
        },
    )
    assert saved.status_code == 302
    segment = Segment.objects.get()
    assert segment.created_by.username == "ann"
    assert segment.conditions.get().days == 30
    assert client.get(count_url(segment)).json() == {"count": 1}


def test_the_change_page_shows_the_saved_count_beside_the_conditions(client, russian_speakers):
    staff_client(client, *CHANGE)
    page = client.get(f"/admin/supporters/segment/{russian_speakers.pk}/change/").content.decode()
    assert "2 members who may be mailed" in page
    assert f'data-url="{count_url(russian_speakers)}"' in page
    assert "data-counted-saved" in page
    # The page's script builds on live_count.js, which must load first.
    assert page.index("mailings/live_count.js") < page.index("mailings/segment_count.js")


def test_the_add_page_points_the_script_at_the_add_forms_count(client):
    staff_client(client, "supporters.view_segment", "supporters.add_segment")
    page = client.get("/admin/supporters/segment/add/").content.decode()
    assert f'data-url="{count_url()}"' in page
    assert "Counted as you choose the conditions." in page


def test_viewing_needs_the_view_permission_and_changing_the_change_permission(
    client, russian_speakers
):
    change_url = f"/admin/supporters/segment/{russian_speakers.pk}/change/"
    staff_client(client, "supporters.view_tag", username="nobody")
    assert client.get(change_url).status_code == 403
    staff_client(client, "supporters.view_segment", username="viewer")
    assert client.get(change_url).status_code == 200
    response = client.post(change_url, {"name": "Renamed", **form_query()})
    assert response.status_code == 403
    assert Segment.objects.get().name == "Russian speakers"


def test_the_segment_list_shows_no_counts(client, russian_speakers):
    staff_client(client, "supporters.view_segment")
    page = client.get("/admin/supporters/segment/").content.decode()
    assert "Russian speakers" in page
    assert "members who may be mailed" not in page


def test_count_json_is_plain_json_for_scripts(client, russian_speakers):
    staff_client(client, "supporters.view_segment")
    body = client.get(count_url(russian_speakers)).content
    assert json.loads(body) == {"count": 2}
