"""The unsubscribe page's pause and language forms, in a real browser on a phone-sized screen.

Choices are found by their labels and buttons by their names, as a screen reader finds them.
"""

import pytest
from playwright.sync_api import Page, expect

from supporters.models import Supporter
from supporters.tokens import make_unsubscribe_token
from tests.factories import SupporterFactory

PHONE_WIDTH = 375
MIN_TOUCH_TARGET_PX = 44

pytestmark = pytest.mark.django_db(transaction=True)


def assert_fits_a_phone(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH


def test_a_supporter_pauses_their_mail_on_a_phone(phone: Page):
    supporter = SupporterFactory()
    phone.goto(f"/unsubscribe/{make_unsubscribe_token(supporter.pk)}/")
    expect(phone.get_by_role("heading", name="Unsubscribe from campaign emails?")).to_be_visible()
    assert_fits_a_phone(phone)
    pause = phone.get_by_role("group", name="Pause emails for")
    for label in ("30 days", "90 days"):
        box = pause.get_by_text(label).bounding_box()
        assert box["height"] >= MIN_TOUCH_TARGET_PX, (label, box)
    pause.get_by_label("90 days").check()
    phone.get_by_role("button", name="Pause emails").click()
    expect(phone.get_by_role("heading", name="Your emails are paused")).to_be_visible()
    supporter.refresh_from_db()
    assert supporter.paused_until is not None
    assert supporter.status == Supporter.Status.SUBSCRIBED


def test_a_supporter_changes_language_in_russian_on_a_phone(phone: Page):
    supporter = SupporterFactory(language="en")
    phone.goto(f"/unsubscribe/{make_unsubscribe_token(supporter.pk)}/?lang=ru")
    expect(phone.get_by_role("heading", name="Отписаться от писем кампании?")).to_be_visible()
    assert_fits_a_phone(phone)
    phone.get_by_role("group", name="Язык наших писем").get_by_label("Русский").check()
    phone.get_by_role("button", name="Сохранить язык").click()
    expect(phone.get_by_role("heading", name="Язык сохранён")).to_be_visible()
    supporter.refresh_from_db()
    assert supporter.language == "ru"
