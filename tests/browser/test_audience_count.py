"""The mailing form's live recipient count, in a real browser (mailings/static/mailings/).

The tag fields are Django's filter_horizontal widgets, which move options between two selects
without a change event: the test chooses tags with the widget's own buttons, as a campaigner
does, and reads the count where a screen reader does, in the field's status region.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from supporters.models import Engagement, Segment, SegmentCondition
from tests.browser.conftest import live_server_context
from tests.factories import (
    MailingFactory,
    PetitionFactory,
    SignatureFactory,
    SupporterFactory,
    TagFactory,
)


@pytest.fixture
def admin_page(browser, live_server) -> Page:
    """A desktop-sized page logged in as a superuser, talking to nothing but the live server."""
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.org", "x"))
    context = live_server_context(
        browser, live_server, viewport={"width": 1280, "height": 1000}, locale="en-GB"
    )
    context.set_default_timeout(10_000)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    yield page
    context.close()


def count_requests(page: Page) -> list[str]:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "audience.json" in r.url else None)
    return requests


def test_the_count_follows_the_audience_fields_as_they_change(admin_page):
    TagFactory(name="donors")
    volunteers = TagFactory(name="volunteers")
    petition = PetitionFactory()
    for language in ("en", "en", "ru"):
        SupporterFactory(language=language).tags.add(volunteers)
    SupporterFactory(language="ru", country="LT")
    SignatureFactory(petition=petition, supporter=SupporterFactory(language="en"))
    mailing = MailingFactory()
    requests = count_requests(admin_page)

    admin_page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    recipients = admin_page.get_by_role("status")
    expect(recipients).to_have_text("5 recipients (en: 3, ru: 2)")
    admin_page.wait_for_load_state("networkidle")
    assert requests == [], "the saved count is on the page: nothing to ask"

    admin_page.locator("#id_audience_include_tags_from").select_option(label="volunteers")
    admin_page.locator("#id_audience_include_tags_add").click()
    expect(recipients).to_have_text("3 recipients (en: 2, ru: 1)")

    admin_page.locator("#id_audience_language").select_option("ru")
    expect(recipients).to_have_text("1 recipient (en: 0, ru: 1)")

    admin_page.locator("#id_audience_include_tags_remove_all").click()
    expect(recipients).to_have_text("2 recipients (en: 0, ru: 2)")
    admin_page.locator("#id_audience_country").fill("lt")
    expect(recipients).to_have_text("1 recipient (en: 0, ru: 1)")
    admin_page.locator("#id_audience_language").select_option("")
    admin_page.locator("#id_audience_country").fill("")
    admin_page.locator("#id_audience_not_signed_petition").select_option(str(petition.pk))
    expect(recipients).to_have_text("4 recipients (en: 2, ru: 2)")

    # The field takes two letters (maxlength): the mistake it lets through is a code ISO lacks.
    admin_page.locator("#id_audience_country").fill("uk")
    expect(recipients).to_contain_text("Cannot count the recipients: audience_country: “UK”")


def test_the_add_form_counts_at_once_and_as_it_changes(admin_page):
    SupporterFactory.create_batch(2, language="ru")
    SupporterFactory(language="en")

    admin_page.goto("/admin/mailings/mailing/add/")
    recipients = admin_page.get_by_role("status")
    expect(recipients).to_have_text("3 recipients (en: 1, ru: 2)")
    admin_page.locator("#id_audience_language").select_option("en")
    expect(recipients).to_have_text("1 recipient (en: 1, ru: 0)")


def test_the_count_follows_the_segment_purpose_and_dormant_opt_in(admin_page):
    volunteers = TagFactory(name="volunteers")
    segment = Segment.objects.create(name="Volunteers")
    SegmentCondition.objects.create(segment=segment, kind="has_tag", tag=volunteers)
    for _ in range(2):
        SupporterFactory(language="en").tags.add(volunteers)
    dormant = SupporterFactory(language="ru")
    dormant.tags.add(volunteers)
    Engagement.objects.create(
        supporter=dormant,
        last_engaged_at=timezone.now() - timedelta(days=365),
        mailings_since_engaged=20,
    )
    SupporterFactory(language="en")
    # Saved with a segment and the opt-in: the page's own count needs no request.
    mailing = MailingFactory(audience_segment=segment, include_dormant=True)
    requests = count_requests(admin_page)

    admin_page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    recipients = admin_page.get_by_role("status")
    expect(recipients).to_have_text("3 recipients (en: 2, ru: 1)")
    admin_page.wait_for_load_state("networkidle")
    assert requests == [], "the script reads the saved fields as the server wrote them"

    admin_page.locator("#id_include_dormant").uncheck()
    expect(recipients).to_have_text("2 recipients (en: 2, ru: 0)")
    admin_page.locator("#id_purpose").select_option("repermission")
    expect(recipients).to_have_text("1 recipient (en: 0, ru: 1)")
    admin_page.locator("#id_purpose").select_option("appeal")
    admin_page.locator("#id_audience_segment").select_option("")
    expect(recipients).to_have_text("3 recipients (en: 3, ru: 0)")
