"""The demo campaigner writes an appeal in the body editor, in a real browser, and previews it.

Debian's Chromium driven by Playwright through the Django admin on pytest-django's live server,
logged in as the demo's campaigner (`seed_demo`). The editor is django-prose-editor with Rally's
menu (mailings/content/body_editor.py, mailings/static/mailings/editor/); what it saves goes
through the same checks and sanitiser as HTML typed by hand.
Set RALLY_SCREENSHOTS to a folder to keep a picture of each page the campaigner sees.
"""

import io
import re
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from campaigns.models import Petition
from mailings.demo import content
from mailings.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME
from mailings.models import Mailing
from tests.browser.conftest import live_server_context
from tests.browser.test_mailing_workflow import DESKTOP, screenshot
from tests.factories import MailingFactory, SupporterFactory

pytestmark = pytest.mark.django_db(transaction=True)

# What Word puts on the clipboard: its own classes and mso- styles, spans, an <o:p>, a comment.
WORD_HTML = """<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<style><!-- p.MsoNormal{mso-style-parent:"";margin:0cm;font-size:11.0pt} --></style></head>
<body lang=EN-GB style='tab-interval:36.0pt'><!--StartFragment-->
<p class=MsoNormal style='mso-margin-top-alt:auto;mso-margin-bottom-alt:auto'><span
style='font-size:12.0pt;font-family:"Times New Roman",serif;
mso-fareast-font-family:"Times New Roman"'>
Written in Word, <b>with bold</b> and <i>italics</i>.<o:p></o:p></span></p>
<!--EndFragment--></body></html>"""
# What Google Docs puts there: the whole copy in a <b style="font-weight:normal"> with an id,
# bold and italics as span styles, a list.
GOOGLE_DOCS_HTML = (
    '<meta charset="utf-8"><b style="font-weight:normal;" '
    'id="docs-internal-guid-5d1e2c3b-7fff-4a1b-9c0d-0123456789ab">'
    '<p dir="ltr" style="line-height:1.38;margin-top:0pt;margin-bottom:0pt;">'
    '<span style="font-size:11pt;font-family:Arial,sans-serif;color:#000000;'
    'background-color:transparent;font-weight:700;font-style:normal;white-space:pre-wrap;">'
    'From Google Docs</span><span style="font-size:11pt;font-family:Arial,sans-serif;'
    'font-weight:400;font-style:italic;">, in italics</span></p>'
    '<ul style="margin-top:0;margin-bottom:0;padding-inline-start:48px;">'
    '<li dir="ltr" style="list-style-type:disc;font-size:11pt;" aria-level="1">'
    '<p dir="ltr" style="line-height:1.38;" role="presentation">'
    '<span style="font-size:11pt;font-family:Arial,sans-serif;">A listed point</span></p></li>'
    "</ul></b>"
)
# Nothing of Word's or Google's own may reach the saved HTML.
PASTE_LEFTOVERS = ("style=", "class=", "mso", "Mso", "docs-internal", "<span", "<o:p", "<!--",
                   "dir=", "<meta", "<b ", "<b>", "font-weight")  # fmt: skip


@pytest.fixture
def demo_desk(browser, live_server) -> Page:
    """The demo campaigner's desktop browser, logged in to the admin of the seeded demo."""
    call_command("seed_demo", stdout=io.StringIO())
    context = live_server_context(browser, live_server, **DESKTOP)
    context.set_default_timeout(30_000)
    # The machine is shared: give each expectation the same time as each action.
    expect.set_options(timeout=30_000)
    page = context.new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(DEMO_USERNAME)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(
        page.get_by_role("link", name="Log out").or_(page.locator("#logout-form"))
    ).to_be_visible()
    yield page
    context.close()


def body_editor(page: Page, field_id: str = "id_html_body"):
    """Return the editing area of a body, once its editor is running."""
    expect(page.locator(f"#{field_id}")).to_have_attribute("data-rally-body-mode", "editor")
    return page.locator(".rally-body", has=page.locator(f"#{field_id}")).get_by_role("textbox")


# True once the caret is collapsed with nothing of the editing area after it.
CARET_AT_THE_END = """(area) => {
    const selection = getSelection()
    if (!selection.rangeCount || !selection.isCollapsed) return false
    const rest = document.createRange()
    rest.selectNodeContents(area)
    const caret = selection.getRangeAt(0)
    if (!area.contains(caret.endContainer)) return false
    rest.setStart(caret.endContainer, caret.endOffset)
    return rest.toString() === ""
}"""


def paste_html(page: Page, area, html: str) -> None:
    """Paste `html` into the editing area as the clipboard of an office program would."""
    area.evaluate(
        """(area, html) => {
            const clipboard = new DataTransfer()
            clipboard.setData("text/html", html)
            clipboard.setData("text/plain", "plain text the editor must not prefer")
            area.dispatchEvent(new ClipboardEvent("paste", {
                clipboardData: clipboard, bubbles: true, cancelable: true,
            }))
        }""",
        html,
    )


def save(page: Page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("successfully")


class _Letters(HTMLParser):
    """Each letter of a body with the blocks and marks it sits in, whatever their order."""

    BLOCKS = {"p", "h1", "h2", "h3", "h4", "ul", "ol", "li", "blockquote"}
    SAME = {"b": "strong", "i": "em"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, tuple]] = []
        self.letters: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        tag = self.SAME.get(tag, tag)
        if tag == "br":
            self.letters.append(("\n", self._blocks(), frozenset()))
        elif tag != "img":
            self.open.append((tag, tuple(sorted(attrs))))

    def handle_endtag(self, tag):
        tag = self.SAME.get(tag, tag)
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        for letter in data:
            if not letter.isspace():
                marks = frozenset(item for item in self.open if item[0] not in self.BLOCKS)
                self.letters.append((letter, self._blocks(), marks))

    def _blocks(self) -> tuple:
        # A paragraph in a list item is the item's own text, as the editor writes it.
        return tuple(tag for tag, _ in self.open if tag in self.BLOCKS and tag != "p")


def letters(html: str) -> list[tuple]:
    parser = _Letters()
    parser.feed(html)
    return parser.letters


def test_the_demo_campaigner_writes_an_appeal_in_the_editor_and_previews_it(demo_desk):
    page = demo_desk
    petition = Petition.objects.get(slug=content.NAVALNY_PETITION["slug"])
    SupporterFactory(email="ann@example.org", first_name="Ann")

    page.goto("/admin/mailings/mailing/add/")
    page.locator("#id_campaign").select_option(str(petition.campaign_id))
    page.locator("#id_petition").select_option(str(petition.pk))
    page.locator("#id_name").fill("Written in the editor")
    page.locator("#id_subject").fill('{{ first_name|default:"Friend" }}, one minute')
    area = body_editor(page)
    menu = page.locator(".rally-body", has=page.locator("#id_html_body")).locator(".prose-menubar")

    # A heading, from the menu's block types.
    area.click()
    page.keyboard.type("Free the marchers")
    menu.locator(".prose-menubar__selected").first.click()
    page.locator(".prose-menubar__option", has_text="Heading 2").click()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    # A merge field from the menu, with the fallback the menu offers for it.
    page.keyboard.type("Dear ")
    menu.get_by_role("button", name="Insert a merge field").click()
    dialog = page.locator("dialog.prose-editor-dialog")
    expect(dialog.get_by_label("Merge field")).to_have_value("first_name")
    expect(dialog.get_by_label("Fallback")).to_have_value("friend")
    dialog.get_by_role("button", name="Insert").click()
    # Set apart from the letter's words, to be read as the supporter's own name.
    expect(area.locator(".rally-template-tag")).to_have_text('{{ first_name|default:"friend" }}')
    page.keyboard.type(",")
    page.keyboard.press("Enter")
    page.keyboard.type("Will you add your name today?")
    page.keyboard.press("Enter")
    # The button to the supporter's own petition page.
    menu.get_by_role("button", name=re.compile("Show this link as a button")).click()
    expect(area.locator("a.button")).to_have_text("Sign the petition")
    screenshot(page, "editor-compose")
    save(page)

    mailing = Mailing.objects.get(name="Written in the editor")
    assert "<h2>Free the marchers</h2>" in mailing.html_body
    assert '<p>Dear {{ first_name|default:"friend" }},</p>' in mailing.html_body
    button = re.search(r"<a [^>]*>Sign the petition</a>", mailing.html_body)[0]
    assert 'class="button"' in button and 'href="{{ petition_url }}"' in button
    assert mailing.text_body == ""
    # Saved, it opens in the editor again.
    expect(page.locator("#id_html_body")).to_have_attribute("data-rally-body-mode", "editor")

    # The preview as Ann: her name, the heading and the button to her own petition link.
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("Preview")).click()
    page.get_by_label("Preview as the supporter with the address").fill("ann@example.org")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview").click()
    expect(page.locator(".preview-subject")).to_have_text("Ann, one minute")
    email = page.frame_locator("iframe[title='The email as HTML']")
    expect(email.get_by_role("heading", name="Free the marchers")).to_be_visible()
    expect(email.get_by_text("Dear Ann,")).to_be_visible()
    button = email.locator("a.button")
    expect(button).to_have_text("Sign the petition")
    expect(button).to_have_attribute("href", re.compile(r"/petitions/free-navalny/\?t="))
    expect(button).to_have_css("background-color", "rgb(138, 28, 28)")
    expect(button).to_have_css("display", "inline-block")
    # The plain-text part is still made from the HTML, the button a link there.
    expect(page.locator(".preview-text")).to_contain_text("Dear Ann,")
    expect(page.locator(".preview-text")).to_contain_text("[Sign the petition](http")
    screenshot(page, "editor-preview")


def test_the_demo_appeal_opens_in_the_editor_and_saves_with_nothing_lost(demo_desk):
    page = demo_desk
    mailing = Mailing.objects.get()
    before = mailing.html_body

    page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    area = body_editor(page)
    expect(page.locator(".rally-body-note").first).to_be_hidden()
    expect(area.locator("a.button")).to_have_text("Sign the petition")
    # An edit and its undoing: the form now holds the editor's own HTML of the appeal.
    area.locator("p").first.click()
    page.keyboard.press("End")
    page.keyboard.type("!")
    page.keyboard.press("Backspace")
    assert page.locator("#id_html_body").input_value() != before
    save(page)

    mailing.refresh_from_db()
    assert mailing.html_body != before  # written again by the editor…
    assert letters(mailing.html_body) == letters(before)  # …with every letter and mark kept
    assert re.search(r'<a [^>]*class="button"[^>]*>Sign the petition</a>', mailing.html_body)


def test_text_pasted_from_word_and_google_docs_arrives_as_clean_html(demo_desk):
    page = demo_desk
    mailing = MailingFactory(
        campaign=Mailing.objects.get().campaign, petition=Mailing.objects.get().petition,
        html_body="<p>Pasted below:</p>",
    )  # fmt: skip

    page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    area = body_editor(page)
    # Focused without a click: ProseMirror applies a click's caret when it handles the mouse
    # up, which could land after Control+End and put the caret back where the click fell.
    area.focus()
    page.keyboard.press("Control+End")
    page.wait_for_function(CARET_AT_THE_END, arg=area.element_handle())
    page.keyboard.press("Enter")
    paste_html(page, area, WORD_HTML)
    expect(area).to_contain_text("Written in Word, with bold and italics.")
    page.keyboard.press("Enter")
    paste_html(page, area, GOOGLE_DOCS_HTML)
    expect(area).to_contain_text("A listed point")
    save(page)

    mailing.refresh_from_db()
    saved = mailing.html_body
    assert saved.startswith("<p>Pasted below:</p><p>Written in Word")
    for leftover in PASTE_LEFTOVERS:
        assert leftover not in saved, (leftover, saved)
    assert "Written in Word, <strong>with bold</strong> and <em>italics</em>." in saved
    assert "<strong>From Google Docs</strong><em>, in italics</em>" in saved
    assert "<ul><li><p>A listed point</p></li></ul>" in saved
    # Google's bold wrapper around the whole copy says "not bold": nothing else became bold.
    assert saved.count("<strong>") == 2


def test_a_body_the_editor_would_cut_opens_as_html_and_switches_only_on_yes(demo_desk):
    page = demo_desk
    demo = Mailing.objects.get()
    table = '<p>Hi</p><table><tr><td style="color:#005a9c">Kept whole</td></tr></table>'
    mailing = MailingFactory(campaign=demo.campaign, petition=demo.petition, html_body=table)

    page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    body = page.locator("#id_html_body")
    expect(body).to_have_attribute("data-rally-body-mode", "html")
    expect(body).to_be_visible()
    expect(body).to_have_value(table)
    expect(page.locator(".rally-body-note").first).to_contain_text(
        "the editor would drop <table>, <tr>, <td> elements"
    )
    screenshot(page, "editor-as-html")

    # Asked whether to drop the table, the campaigner says no: nothing changes.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Use the editor").click()
    expect(body).to_have_attribute("data-rally-body-mode", "html")
    expect(body).to_have_value(table)
    # Saying yes, they get the editor, and the form what the editor kept.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Use the editor").click()
    expect(body).to_have_attribute("data-rally-body-mode", "editor")
    assert "<table" not in body.input_value() and "Kept whole" in body.input_value()


def test_a_body_the_server_passes_but_the_editor_would_change_still_opens_as_html(demo_desk):
    """The page checks the editor's own round trip too: a link without an address is lost."""
    page = demo_desk
    demo = Mailing.objects.get()
    odd = '<p>Hi <a href="">there</a></p>'
    mailing = MailingFactory(campaign=demo.campaign, petition=demo.petition, html_body=odd)

    page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    body = page.locator("#id_html_body")
    expect(body).to_have_attribute("data-rally-body-mode", "html")
    expect(body).to_have_value(odd)
    expect(page.locator(".rally-body-note").first).to_contain_text("the editor would drop some")


def test_raw_html_is_still_written_by_hand_and_checked_as_before(demo_desk):
    page = demo_desk
    mailing = Mailing.objects.get()

    page.goto(f"/admin/mailings/mailing/{mailing.pk}/change/")
    body_editor(page)
    page.get_by_role("button", name="Edit as HTML").click()
    body = page.locator("#id_html_body")
    expect(body).to_have_attribute("data-rally-body-mode", "html")
    body.fill(
        '<p style="color:#005a9c" onclick="steal()">Hi {{ first_name }}</p>'
        '<p><a class="button" href="javascript:steal()">Sign</a></p><script>steal()</script>'
    )
    save(page)

    mailing.refresh_from_db()
    assert mailing.html_body == (
        '<p style="color:#005a9c">Hi {{ first_name }}</p>'
        '<p><a class="button" rel="noopener noreferrer">Sign</a></p>'
    )
    # A style attribute the editor cannot keep: the body now opens as HTML.
    expect(page.locator("#id_html_body")).to_have_attribute("data-rally-body-mode", "html")

    # And a mistake in a merge field is refused as before, naming the line.
    page.locator("#id_html_body").fill("<p>Dear {{ frist_name }}</p>")
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".errorlist").first).to_contain_text("unknown merge field frist_name")
