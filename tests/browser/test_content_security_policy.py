"""The pages work under their own Content-Security-Policy, in a real browser, and only the embed
form may be framed by another site.

Chromium reports each thing a policy blocks as a console message naming the Content Security
Policy; a page that works as the policy says yields none. A campaign's own site is played by a
small HTTP server on 127.0.0.1, so nothing leaves the machine.
"""

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Page, expect

from mailings.models import Mailing
from tests.browser.conftest import PHONE, live_server_context
from tests.browser.test_mailing_workflow import DESKTOP
from tests.browser.test_petition_pages import TEXT, fill_sign_form
from tests.factories import PetitionFactory

SIGNER = {
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.org",
    "country": "DE",
    "postcode": "10115",
}
PASSWORD = "csp-admin-password"  # noqa: S105 -- a test login


def policy_violations(page: Page) -> list[str]:
    """Collect, from now on, the console messages in which the page's policy blocked something."""
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


class _FramingPage(BaseHTTPRequestHandler):
    """Answer any path with a page that frames the same path of the live server."""

    live_server_url = ""

    def do_GET(self):  # noqa: N802 -- http.server's name
        body = (
            f'<!doctype html><h1>Our campaign</h1><iframe src="{self.live_server_url}{self.path}" '
            'width="360" height="900"></iframe>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def campaign_site(browser, live_server):
    """A phone, and a campaign's web site: another origin on this machine, framing our pages.

    The site is a real HTTP server on 127.0.0.1 (the live server answers on localhost: another
    site to the browser), so Chromium treats the two as it would a campaign's site and ours.
    """
    handler = type("FramingPage", (_FramingPage,), {"live_server_url": live_server.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site = f"http://127.0.0.1:{server.server_address[1]}"
    context = live_server_context(browser, live_server, **PHONE)
    context.set_default_timeout(15_000)
    # Routes added later are tried first: the campaign's site, then the live-server-only one.
    context.route(f"{site}/**", lambda route: route.continue_())
    page = context.new_page()
    page.campaign_site = site
    yield page
    context.close()
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("page_path", "heading"),
    [
        ("/petitions/{slug}/embed/", "Free the framed"),
        ("/petitions/{slug}/embed/thanks/", "Thank you for signing"),
    ],
)
def test_a_campaign_site_frames_the_embed_form_and_its_thank_you_page(
    campaign_site, page_path, heading
):
    # Signing inside the frame is left to the HTTP tests (test_headers_and_deploy): a browser
    # context here is incognito-like and keeps no third-party cookie, so no CSRF cookie either.
    petition = PetitionFactory(title="Free the framed")
    violations = policy_violations(campaign_site)
    campaign_site.goto(campaign_site.campaign_site + page_path.format(slug=petition.slug))
    frame = campaign_site.frame_locator("iframe")
    expect(frame.get_by_role("heading", level=1)).to_have_text(heading)
    assert violations == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("page_path", ["/petitions/{slug}/", "/petitions/{slug}/thanks/"])
def test_a_campaign_site_cannot_frame_the_sites_own_pages(campaign_site, page_path):
    petition = PetitionFactory()
    violations = policy_violations(campaign_site)
    campaign_site.goto(campaign_site.campaign_site + page_path.format(slug=petition.slug))
    expect(campaign_site.get_by_role("heading", name="Our campaign")).to_be_visible()
    frame = campaign_site.frame_locator("iframe")
    expect(frame.locator("main")).to_have_count(0)
    assert any("frame-ancestors" in violation for violation in violations), violations


@pytest.mark.django_db(transaction=True)
def test_signing_and_sharing_on_a_phone_breaks_no_rule_of_the_pages_policy(phone):
    petition = PetitionFactory(requires_confirmation=False)
    violations = policy_violations(phone)
    phone.goto(f"/petitions/{petition.slug}/")
    fill_sign_form(phone, TEXT["en"], petition.consent_wording, **SIGNER)
    phone.get_by_role("button", name="Sign the petition").click()
    expect(phone.get_by_role("heading", name="Thank you for signing")).to_be_visible()
    # The copy button is shown by the page's script (a file of ours), where the browser can copy.
    expect(phone.get_by_role("button", name="Copy link")).to_be_visible()
    assert violations == []


@pytest.mark.django_db(transaction=True)
def test_the_admins_editor_preview_and_report_break_no_rule_of_the_admins_policy(
    browser, live_server
):
    call_command("seed_demo", stdout=io.StringIO())
    mailing = Mailing.objects.get()
    User.objects.create_superuser("csp-admin", "admin@ngo.example", PASSWORD)
    context = live_server_context(browser, live_server, **DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    violations = policy_violations(page)
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("csp-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    # The editor runs: its import map (an inline script) carries the page's nonce.
    expect(page.locator("#id_html_body")).to_have_attribute("data-rally-body-mode", "editor")
    expect(page.locator(".ProseMirror").first).to_be_attached()
    page.goto(f"/admin/mailings/mailing/{mailing.pk}/preview/")
    expect(page.locator(".preview-subject")).to_be_visible()
    page.goto(f"/admin/mailings/mailing/{mailing.pk}/report/")
    expect(page.locator("h1")).to_be_visible()
    context.close()
    assert violations == []
