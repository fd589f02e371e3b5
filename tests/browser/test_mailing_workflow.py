"""A campaigner's whole mailing, in a real browser: compose in two languages, check, send, watch.

Real parts throughout: Debian's Chromium driven by Playwright through the Django admin on
pytest-django's live server, logged in as a member of the Campaigner group; a Celery worker
process serving every queue and writing each email to the development outbox.
Set RALLY_SCREENSHOTS to a folder to keep a picture of each page the campaigner sees.
"""

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission, User
from playwright.sync_api import Page, expect

from config.lib.roles import campaigner_group_ensure
from mailings.models import Delivery, Mailing, OutboxMessage
from tests.browser.conftest import live_server_context
from tests.factories import PetitionFactory, SignatureFactory, SupporterFactory
from tests.processes import wait_for

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "en-GB"}
PASSWORD = "campaign-hard"  # noqa: S105 -- a test login


@pytest.fixture
def desk(browser, live_server) -> Page:
    """A campaigner's desktop browser on the live server, logged in to the admin."""
    group = campaigner_group_ensure(group_model=Group, permission_model=Permission)
    user = User.objects.create_user("maria", password=PASSWORD, is_staff=True)
    user.groups.add(group)
    context = live_server_context(browser, live_server, **DESKTOP)
    context.set_default_timeout(30_000)
    # The machine is shared: give each expectation the same time as each action.
    expect.set_options(timeout=30_000)
    page = context.new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(
        page.get_by_role("link", name="Log out").or_(page.locator("#logout-form"))
    ).to_be_visible()
    yield page
    context.close()


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("RALLY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_compose_check_send_and_watch_an_appeal_in_english_and_russian(desk, celery_worker_factory):
    petition = PetitionFactory(title="Free the marchers")
    readers = {
        "ann@example.org": SupporterFactory(email="ann@example.org", first_name="Ann"),
        "bob@example.org": SupporterFactory(email="bob@example.org", first_name="Bob"),
        "ivan@example.org": SupporterFactory(
            email="ivan@example.org", first_name="Иван", language="ru"
        ),
        "olga@example.org": SupporterFactory(
            email="olga@example.org", first_name="Ольга", language="ru"
        ),
    }
    signed = SupporterFactory(email="signed@example.org")
    SignatureFactory(petition=petition, supporter=signed)
    SupporterFactory(email="left@example.org", status="unsubscribed")
    celery_worker_factory(EMAIL_BACKEND="mailings.sending.esp.outbox.EmailBackend")

    # Compose: the appeal, its audience, and a Russian version.
    page = desk
    page.goto("/admin/mailings/mailing/add/")
    page.locator("#id_campaign").select_option(str(petition.campaign_id))
    page.locator("#id_petition").select_option(str(petition.pk))
    page.locator("#id_name").fill("Marchers: first appeal")
    page.locator("#id_subject").fill('{{ first_name|default:"Friend" }}, the marchers need you')
    page.locator("#id_preheader").fill("Sign before Friday")
    # Written as HTML here; tests/browser/test_editor.py writes one in the editor.
    page.get_by_role("button", name="Edit as HTML").click()
    page.locator("#id_html_body").fill(
        '<p>Dear {{ first_name|default:"friend" }},</p>'
        '<p><a href="{{ petition_url }}">Sign the petition</a> today.</p>'
    )
    page.locator("#id_audience_not_signed_petition").select_option(str(petition.pk))
    # The live count: subscribed, not signed, by language.
    expect(page.locator(".audience-count-text")).to_have_text("4 recipients (en: 2, ru: 2)")
    # The admin's inline script adds the form (its link is a button, to assistive technology).
    page.get_by_role("button", name=re.compile("Add another Language version", re.I)).click()
    page.locator("#id_versions-0-language").select_option("ru")
    page.locator("#id_versions-0-subject").fill("{{ first_name }}, участникам марша нужна помощь")
    page.locator(".rally-body", has=page.locator("#id_versions-0-html_body")).get_by_role(
        "button", name="Edit as HTML"
    ).click()
    page.locator("#id_versions-0-html_body").fill(
        '<p>Здравствуйте, {{ first_name }}!</p><p><a href="{{ petition_url }}">Подпишите</a>.</p>'
    )
    screenshot(page, "compose")
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    mailing = Mailing.objects.get(name="Marchers: first appeal")

    # Preview as a Russian-speaking supporter: the Russian subject. Each click is waited for:
    # the first preview is of a random member, Иван one time in four, whose subject would
    # pass the check below on the old page while the new one is still loading.
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("Preview")).click()
    page.get_by_label("Preview as the supporter with the address").fill("ivan@example.org")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview").click()
    expect(page.locator(".preview-subject")).to_have_text("Иван, участникам марша нужна помощь")
    screenshot(page, "preview")

    # A test copy to the campaigner's own inbox.
    page.get_by_label(re.compile("^To \\(up to")).fill("maria@ngo.example")
    with page.expect_navigation():  # the POST, then its redirect back to the preview
        page.get_by_role("button", name="Send test copy").click()
    expect(page.locator(".messagelist")).to_contain_text("is on its way to maria@ngo.example")
    test_copy = wait_for(
        lambda: OutboxMessage.objects.filter(to="maria@ngo.example").first(),
        timeout=30,
        message="the test copy never reached the outbox",
    )
    assert test_copy.subject == "[TEST] Иван, участникам марша нужна помощь"
    assert not Delivery.objects.exists()

    # Send: the confirmation states the count and the languages, and takes the count back.
    page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    page.get_by_role("link", name="Send…").click()
    expect(page.locator(".recipient-count")).to_have_text("4")
    expect(page.get_by_role("row", name=re.compile("Languages"))).to_contain_text("2")
    screenshot(page, "confirmation")
    page.get_by_label(re.compile("To confirm, type the number of recipients")).fill("4")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("Send to 4 supporters now")).click()

    # Watch it go: the progress page reaches "Sent" with the right totals.
    page.goto(f"/admin/mailings/mailing/{mailing.pk}/progress/")
    expect(page.get_by_text("Status:")).to_be_visible()
    wait_for(
        lambda: Mailing.objects.get(pk=mailing.pk).status == Mailing.Status.SENT,
        timeout=60,
        message="the worker did not finish the send",
    )
    page.goto(f"/admin/mailings/mailing/{mailing.pk}/progress/")
    expect(page.get_by_text("Status: Sent")).to_be_visible()
    expect(page.get_by_text("4 of 4 deliveries done")).to_be_visible()
    progress = page.request.get(f"/admin/mailings/mailing/{mailing.pk}/progress.json").json()
    assert progress["status"] == "sent"
    assert (progress["total"], progress["sent"], progress["pending"]) == (4, 4, 0)
    screenshot(page, "progress")

    # Each reader got one copy, in their language; nobody else got one.
    copies = list(
        OutboxMessage.objects.exclude(to="maria@ngo.example").values_list("to", "subject")
    )
    assert sorted(to for to, _ in copies) == sorted(readers)
    subjects = dict(copies)
    assert subjects["ann@example.org"] == "Ann, the marchers need you"
    assert subjects["ivan@example.org"] == "Иван, участникам марша нужна помощь"
    assert subjects["olga@example.org"] == "Ольга, участникам марша нужна помощь"
