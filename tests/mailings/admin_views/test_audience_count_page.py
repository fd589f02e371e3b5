"""The audience's count beside its fields: audience.json and the read-only "Recipients" field."""

import html

import pytest
from django.contrib.auth.models import Permission, User
from django.http import QueryDict

from mailings.admin_views.audience import conditions_from_query, conditions_query
from mailings.selectors import AudienceConditions
from supporters.models import Supporter
from tests.admin_users import staff_client
from tests.factories import (
    MailingFactory,
    PetitionFactory,
    SignatureFactory,
    SupporterFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/mailings/mailing/audience.json"


def url(mailing) -> str:
    return f"/admin/mailings/mailing/{mailing.pk}/audience.json"


@pytest.fixture
def viewer(client):
    return staff_client(client, "view_mailing")


@pytest.fixture
def people():
    """Six supporters, one of each kind the conditions tell apart, and the tags and petition."""
    volunteers, donors = TagFactory(name="volunteers"), TagFactory(name="donors")
    petition = PetitionFactory()
    SupporterFactory(email="volunteer@example.org").tags.add(volunteers)
    SupporterFactory(email="donor@example.org").tags.add(volunteers, donors)
    SupporterFactory(email="ru@example.org", language="ru", country="LT").tags.add(volunteers)
    signer = SupporterFactory(email="signer@example.org", language="ru")
    signer.tags.add(volunteers)
    SignatureFactory(petition=petition, supporter=signer)
    SupporterFactory(email="plain@example.org")
    SupporterFactory(email="gone@example.org", status=Supporter.Status.UNSUBSCRIBED)
    return {"volunteers": volunteers, "donors": donors, "petition": petition}


def test_the_saved_audience_is_counted_with_every_language(viewer, people):
    mailing = MailingFactory(audience_not_signed_petition=people["petition"])
    mailing.audience_include_tags.add(people["volunteers"])
    mailing.audience_exclude_tags.add(people["donors"])

    response = viewer.get(url(mailing))

    assert response.status_code == 200
    assert response.json() == {"count": 2, "by_language": {"en": 1, "ru": 1}}
    everyone = viewer.get(url(MailingFactory())).json()
    assert everyone == {"count": 5, "by_language": {"en": 3, "ru": 2}}
    nobody = viewer.get(url(MailingFactory(audience_country="FR"))).json()
    assert nobody == {"count": 0, "by_language": {"en": 0, "ru": 0}}


@pytest.mark.parametrize(
    ("parameters", "count"),
    [
        ({"audience_include_tags": "donors", "audience_exclude_tags": ""}, 1),
        ({"audience_include_tags": ["donors", "volunteers"], "audience_exclude_tags": ""}, 3),
        ({"audience_include_tags": ""}, 3),  # an empty value removes the condition
        ({"audience_exclude_tags": ""}, 3),
        ({"audience_exclude_tags": "volunteers"}, 0),
        ({"audience_signed_petition": "petition", "audience_not_signed_petition": ""}, 1),
        ({"audience_not_signed_petition": ""}, 3),
        ({"audience_language": "ru"}, 1),
        ({"audience_language": "en"}, 1),
        ({"audience_country": "lt"}, 1),
        ({"audience_country": "GB"}, 1),
        ({"audience_include_tags": "", "audience_exclude_tags": "", "audience_language": ""}, 4),
    ],
)
def test_query_parameters_replace_the_saved_condition_they_name(viewer, people, parameters, count):
    """Saved: volunteers, not donors, not signed (2). Each parameter replaces one condition."""
    mailing = MailingFactory(audience_not_signed_petition=people["petition"])
    mailing.audience_include_tags.add(people["volunteers"])
    mailing.audience_exclude_tags.add(people["donors"])

    def as_id(value):
        return str(people[value].pk) if value in people else value

    query = {
        name: [as_id(v) for v in value] if isinstance(value, list) else as_id(value)
        for name, value in parameters.items()
    }
    data = viewer.get(url(mailing), query).json()

    assert data["count"] == count
    assert sum(data["by_language"].values()) == count
    # The saved mailing is what it was: the parameters counted, they changed nothing.
    assert viewer.get(url(mailing)).json()["count"] == 2


def test_the_add_form_counts_its_conditions_before_there_is_a_mailing(viewer, people):
    assert viewer.get(ADD_URL).json() == {"count": 5, "by_language": {"en": 3, "ru": 2}}
    petition_id = people["petition"].pk
    data = viewer.get(
        ADD_URL, {"audience_not_signed_petition": petition_id, "audience_language": "ru"}
    ).json()
    assert data == {"count": 1, "by_language": {"en": 0, "ru": 1}}


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("audience_include_tags", "abc"),
        ("audience_exclude_tags", "1,2"),
        ("audience_signed_petition", "1.5"),
        ("audience_not_signed_petition", "-3"),
        ("audience_signed_petition", "0"),
        ("audience_signed_petition", "\u0661"),  # ARABIC-INDIC DIGIT ONE: int() would take it
        ("audience_include_tags", "99999999999999999999"),  # past a bigint: not a 500
        ("audience_language", "de"),
        ("audience_country", "GBR"),
        ("audience_country", "UK"),
    ],
)
def test_a_parameter_that_cannot_be_a_condition_is_a_400_that_names_it(
    viewer, people, parameter, value
):
    mailing = MailingFactory()
    for address in (url(mailing), ADD_URL):
        response = viewer.get(address, {parameter: value})
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        error = response.json()["error"]
        assert parameter in error and value.upper() in error.upper()


def test_the_count_needs_the_view_permission(client, people):
    mailing = MailingFactory()
    staff_client(client, "add_mailing")
    for address in (url(mailing), ADD_URL):
        response = client.get(address)
        assert response.status_code == 403
        assert "error" in response.json()
    # A campaigner who may change mailings may view them (the admin's rule).
    user = User.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename="change_mailing"))
    assert client.get(url(mailing)).status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(url(MailingFactory()))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_missing_mailing_is_a_404_and_only_get_is_answered(viewer):
    response = viewer.get("/admin/mailings/mailing/999999/audience.json")
    assert response.status_code == 404
    assert response.json() == {"error": "There is no mailing 999999."}
    assert viewer.post(url(MailingFactory())).status_code == 405


def test_the_change_page_shows_the_saved_count_without_javascript(client, people):
    staff_client(client, "view_mailing", "change_mailing")
    mailing = MailingFactory(audience_language="ru")

    page = client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()

    assert "Recipients" in page
    assert "2 recipients (en: 0, ru: 2)" in page
    assert 'role="status"' in page
    assert f'data-url="{url(mailing)}"' in page
    # What the script compares the form with, to count only when the form differs.
    counted = conditions_query(AudienceConditions(language="ru"))
    assert f'data-counted-query="{html.escape(counted)}"' in page
    # The page's script builds on live_count.js, which must load first.
    assert page.index("mailings/live_count.js") < page.index("mailings/audience_count.js")


def test_the_add_page_points_the_script_at_the_add_forms_count(client):
    staff_client(client, "view_mailing", "add_mailing")
    page = client.get("/admin/mailings/mailing/add/").content.decode()
    assert f'data-url="{ADD_URL}"' in page
    # The page's script builds on live_count.js, which must load first.
    assert page.index("mailings/live_count.js") < page.index("mailings/audience_count.js")


def test_one_recipient_is_one_recipient(client):
    staff_client(client, "view_mailing")
    SupporterFactory()
    mailing = MailingFactory()
    page = client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()
    assert "1 recipient (en: 1, ru: 0)" in page


def test_the_query_the_page_writes_reads_back_as_the_same_conditions():
    """The script writes its query as conditions_query does; the view must read it back."""
    conditions = AudienceConditions(
        include_tag_ids=frozenset({12, 3}),
        exclude_tag_ids=frozenset(),
        signed_petition_id=None,
        not_signed_petition_id=7,
        language="ru",
        country="LT",
    )
    query = conditions_query(conditions)
    assert query == (
        "audience_include_tags=3&audience_include_tags=12&audience_exclude_tags="
        "&audience_signed_petition=&audience_not_signed_petition=7"
        "&audience_language=ru&audience_country=LT"
        "&audience_segment=&include_dormant=&purpose=appeal"
    )
    base = AudienceConditions(exclude_tag_ids=frozenset({5}), signed_petition_id=9)
    assert conditions_from_query(QueryDict(query), base=base) == conditions
