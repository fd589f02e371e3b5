"""A segment's live count of members, in a real browser (mailings/static/mailings/).

The test edits the conditions' inline rows as a campaigner does, adding a row with the inline's
own link, and reads the count where a screen reader does, in the box's status region.
"""

from playwright.sync_api import Page, expect

from supporters.models import Segment
from tests.browser.conftest import browser  # noqa: F401 -- the fixture, shared
from tests.browser.test_audience_count import admin_page  # noqa: F401 -- the fixture, shared
from tests.factories import SupporterFactory, TagFactory


def count_requests(page: Page) -> list[str]:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "count.json" in r.url else None)
    return requests


def test_the_count_follows_the_conditions_as_they_change(admin_page):  # noqa: F811
    volunteers = TagFactory(name="volunteers")
    for language in ("en", "en", "ru"):
        SupporterFactory(language=language).tags.add(volunteers)
    SupporterFactory(language="ru")
    SupporterFactory(language="en")
    segment = Segment.objects.create(name="Russian speakers")
    segment.conditions.create(kind="language", language="ru")
    requests = count_requests(admin_page)

    admin_page.goto(f"/admin/supporters/segment/{segment.pk}/change/")
    members = admin_page.get_by_role("status")
    expect(members).to_have_text("2 members who may be mailed")
    admin_page.wait_for_load_state("networkidle")
    assert requests == [], "the saved count is on the page: nothing to ask"

    admin_page.locator("#id_conditions-0-language").select_option("en")
    expect(members).to_have_text("3 members who may be mailed")
    admin_page.locator("#id_conditions-0-negate").check()
    expect(members).to_have_text("2 members who may be mailed")
    admin_page.locator("#id_conditions-0-negate").uncheck()

    admin_page.locator("#id_conditions-1-kind").select_option("has_tag")
    expect(members).to_contain_text(
        "Cannot count the members: condition 2, tag: A “Has tag” condition needs a tag."
    )
    admin_page.locator("#id_conditions-1-tag").select_option(str(volunteers.pk))
    expect(members).to_have_text("2 members who may be mailed")  # English volunteers
    admin_page.locator("#id_match").select_option("any")
    expect(members).to_have_text("4 members who may be mailed")

    admin_page.locator("#id_conditions-0-DELETE").check()
    expect(members).to_have_text("3 members who may be mailed")
    admin_page.locator("#id_match").select_option("all")
    admin_page.locator("#id_conditions-1-negate").check()
    expect(members).to_have_text("2 members who may be mailed")


def test_the_add_form_counts_at_once_and_as_it_changes(admin_page):  # noqa: F811
    SupporterFactory.create_batch(2, language="ru")
    SupporterFactory(language="en")

    admin_page.goto("/admin/supporters/segment/add/")
    members = admin_page.get_by_role("status")
    expect(members).to_have_text("3 members who may be mailed")
    admin_page.locator("#id_conditions-0-kind").select_option("language")
    expect(members).to_contain_text("condition 1, language: A “Language” condition needs")
    admin_page.locator("#id_conditions-0-language").select_option("ru")
    expect(members).to_have_text("2 members who may be mailed")
    admin_page.locator(".add-row a").click()
    admin_page.locator("#id_conditions-1-kind").select_option("language")
    admin_page.locator("#id_conditions-1-language").select_option("en")
    expect(members).to_have_text("0 members who may be mailed")
