"""The preference page: pause mail or change its language instead of unsubscribing."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from supporters.models import Supporter
from supporters.services import supporter_pause, supporter_set_language
from supporters.tokens import make_unsubscribe_token
from tests.factories import SupporterFactory

pytestmark = pytest.mark.django_db


def page_url(supporter) -> str:
    return f"/unsubscribe/{make_unsubscribe_token(supporter.pk)}/"


def preferences_url(supporter) -> str:
    return f"{page_url(supporter)}preferences/"


@pytest.fixture
def csrf_client():
    """A browser as Django sees one: the preference forms need the page's CSRF token."""
    return Client(enforce_csrf_checks=True)


def post_from_page(client, supporter, data, *, lang: str = ""):
    """GET the page (as a person does), then POST one of its forms with the CSRF token."""
    page = client.get(page_url(supporter) + (f"?lang={lang}" if lang else ""))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    return client.post(preferences_url(supporter), {**data, "csrfmiddlewaretoken": token.decode()})


def snapshot_of(supporter) -> tuple:
    supporter.refresh_from_db()
    return (supporter.status, supporter.language, supporter.paused_until, supporter.updated_at)


def test_the_page_offers_pause_and_language_and_a_get_changes_nothing(client):
    supporter = SupporterFactory()
    before = snapshot_of(supporter)
    for url in (page_url(supporter), preferences_url(supporter)):
        response = client.get(url, follow=True)
        assert response.status_code == 200
    html = response.content.decode()
    assert 'name="days" value="30"' in html and 'name="days" value="90"' in html
    assert 'name="language" value="ru"' in html
    # Labelled choices in fieldsets, each form with its CSRF token.
    assert html.count("<fieldset") == 2 and html.count("<legend>") == 2
    assert '<label for="id_days_0">30 days</label>' in html
    assert html.count("csrfmiddlewaretoken") == 2
    assert snapshot_of(supporter) == before


@pytest.mark.parametrize("days", [30, 90])
def test_pausing_sets_paused_until_and_keeps_them_subscribed(csrf_client, days):
    supporter = SupporterFactory()
    started = timezone.now()
    response = post_from_page(csrf_client, supporter, {"action": "pause", "days": str(days)})
    assert response.status_code == 200
    supporter.refresh_from_db()
    assert supporter.status == Supporter.Status.SUBSCRIBED
    assert started + timedelta(days=days) <= supporter.paused_until
    assert supporter.paused_until <= timezone.now() + timedelta(days=days)
    until = supporter.paused_until.strftime("%-d %B %Y")
    assert f"no campaign emails until {until}" in response.content.decode()
    # Back on the page, the pause shows.
    page = csrf_client.get(page_url(supporter)).content.decode()
    assert f"Your emails are paused until {until}." in page


def test_a_pause_posted_without_the_csrf_token_is_refused(csrf_client):
    supporter = SupporterFactory()
    response = csrf_client.post(preferences_url(supporter), {"action": "pause", "days": "30"})
    assert response.status_code == 403
    supporter.refresh_from_db()
    assert supporter.paused_until is None


def test_one_click_unsubscribe_still_needs_no_csrf_token(csrf_client):
    supporter = SupporterFactory()
    response = csrf_client.post(page_url(supporter), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    supporter.refresh_from_db()
    assert supporter.status == Supporter.Status.UNSUBSCRIBED


@pytest.mark.parametrize(
    "data",
    [
        {"action": "pause", "days": "7"},
        {"action": "pause"},
        {"action": "language", "language": "de"},
        {"action": "language"},
        {"action": "delete-me"},
        {},
    ],
)
def test_a_bad_choice_is_explained_and_changes_nothing(csrf_client, data):
    supporter = SupporterFactory()
    before = snapshot_of(supporter)
    response = post_from_page(csrf_client, supporter, data)
    assert response.status_code == 400
    assert 'name="days"' in response.content.decode()  # the page again, with its forms
    if data.get("action") in ("pause", "language"):
        assert b'role="alert"' in response.content
    assert snapshot_of(supporter) == before


def test_changing_language_saves_it_and_answers_in_that_language(csrf_client):
    supporter = SupporterFactory(language="en")
    response = post_from_page(csrf_client, supporter, {"action": "language", "language": "ru"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ru">' in html
    assert "Язык сохранён" in html
    assert response["Content-Language"] == "ru"
    supporter.refresh_from_db()
    assert supporter.language == "ru"
    # The page now preselects it.
    page = csrf_client.get(page_url(supporter)).content.decode()
    assert re.search(r'name="language" value="ru"[^>]*checked', page)


def test_the_page_speaks_russian(csrf_client):
    supporter = SupporterFactory()
    page = csrf_client.get(page_url(supporter) + "?lang=ru").content.decode()
    assert '<html lang="ru">' in page
    for text in (
        "Отписаться от писем кампании?",
        "Или сделайте перерыв",
        "Приостановить письма на",
        "30 дней",
        "Язык наших писем",
        "Сохранить язык",
    ):
        assert text in page
    response = post_from_page(csrf_client, supporter, {"action": "pause", "days": "90"}, lang="ru")
    html = response.content.decode()
    assert "Ваши письма приостановлены" in html
    # The date as Russian writes it: the month in the genitive ("3 марта 2027").
    supporter.refresh_from_db()
    assert re.search(r"До \d{1,2} [а-я]+а \d{4} мы не будем", html)


@pytest.mark.parametrize("status", ["unsubscribed", "bounced", "complained", "erased"])
def test_a_supporter_not_subscribed_is_not_changed_and_sees_the_same_answer(csrf_client, status):
    subscribed = SupporterFactory()
    other = SupporterFactory(status=status)
    before = snapshot_of(other)
    answers = []
    for supporter in (subscribed, other):
        response = post_from_page(csrf_client, supporter, {"action": "pause", "days": "30"})
        html = response.content.decode().replace(page_url(supporter), "URL")
        # Two requests may straddle midnight: the date aside, the answers are one.
        answers.append(re.sub(r"until \d+ \w+ \d{4}", "until DATE", html))
        post_from_page(csrf_client, supporter, {"action": "language", "language": "ru"})
    assert answers[0] == answers[1]
    assert snapshot_of(other) == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_bad_token_gets_the_neutral_page_and_changes_nothing(client, method):
    supporter = SupporterFactory()
    before = snapshot_of(supporter)
    token = make_unsubscribe_token(supporter.pk)
    for bad in (f"{supporter.pk}:forged", token[:-3], token.replace(str(supporter.pk), "99", 1)):
        response = getattr(client, method)(
            f"/unsubscribe/{bad}/preferences/", {"action": "pause", "days": "30"}
        )
        assert response.status_code == 400
        html = response.content.decode()
        assert "This unsubscribe link is not recognised" in html
        assert "paused" not in html.lower()
    assert snapshot_of(supporter) == before


def test_pause_and_language_services_are_safe_twice_and_validate():
    supporter = SupporterFactory(language="en")
    first = supporter_pause(supporter_id=supporter.pk, days=30)
    second = supporter_pause(supporter_id=supporter.pk, days=90)
    supporter.refresh_from_db()
    assert supporter.paused_until == second > first  # the latest choice counts
    assert supporter_set_language(supporter_id=supporter.pk, language="ru")
    assert not supporter_set_language(supporter_id=supporter.pk, language="ru")
    with pytest.raises(ValueError, match="30 or 90"):
        supporter_pause(supporter_id=supporter.pk, days=1)
    with pytest.raises(ValueError, match="Unknown language"):
        supporter_set_language(supporter_id=supporter.pk, language="xx")
    supporter.refresh_from_db()
    assert (supporter.language, supporter.paused_until, supporter.status) == (
        "ru",
        second,
        Supporter.Status.SUBSCRIBED,
    )


def test_an_expired_pause_is_not_shown(client):
    supporter = SupporterFactory(paused_until=timezone.now() - timedelta(days=1))
    assert b"paused until" not in client.get(page_url(supporter)).content
