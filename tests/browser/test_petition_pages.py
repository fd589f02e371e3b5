"""The public petition pages in a real browser on a phone-sized screen.

Real parts throughout: Debian's Chromium driven by Playwright, pytest-django's live server over
the test database, a Celery worker process sending the confirmation email to an SMTP sink.
Fields are found by their labels and buttons by their names, as a screen reader finds them, so
a field that loses its label fails these tests.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from bench.worker_processes import WorkerProcess
from campaigns.models import Signature
from espfakes import FakeSMTP
from supporters.models import Supporter
from tests.factories import PetitionFactory
from tests.processes import wait_for

PHONE_WIDTH = 375
# WCAG 2.5.5 and Apple's guidelines: a touch target at least 44 CSS px high.
MIN_TOUCH_TARGET_PX = 44
# What the petition page may weigh, uncompressed, with everything it loads.
MAX_PAGE_BYTES = 100_000

TEXT = {
    "en": {
        "first_name": "First name",
        "last_name": "Last name",
        "email": "Email",
        "country": "Country",
        "postcode": "Postcode (optional)",
        "sign": "Sign the petition",
        "thanks": "Thank you for signing",
        "check_email": "One more step: check your email.",
        "confirm_heading": "Confirm your signature",
        "confirm": "Confirm my signature",
        "email_subject": "Please confirm your signature",
        "resend": "No email? Send it again",
        "resend_email": "Your email",
    },
    "ru": {
        "first_name": "Имя",
        "last_name": "Фамилия",
        "email": "Эл. почта",
        "country": "Страна",
        "postcode": "Почтовый индекс (необязательно)",
        "sign": "Подписать петицию",
        "thanks": "Спасибо за подпись",
        "check_email": "Остался один шаг: проверьте почту.",
        "confirm_heading": "Подтвердите подпись",
        "confirm": "Подтвердить подпись",
        "email_subject": "Подтвердите подпись",
        "resend": "Письмо не пришло? Отправить ещё раз",
        "resend_email": "Ваша эл. почта",
    },
}
RUSSIAN_CONSENT = (
    "Сообщайте мне об этой и других кампаниях по эл. почте. Я могу отписаться в любой момент."
)


def english_petition():
    return PetitionFactory(requires_confirmation=True, title="Free the journalists")


def russian_petition():
    return PetitionFactory(
        requires_confirmation=True,
        language="ru",
        title="Свободу журналистам",
        body="<p>Освободите их сейчас.</p>",
        target="Генеральная прокуратура",
        consent_wording=RUSSIAN_CONSENT,
    )


@dataclass(frozen=True)
class MailSink:
    smtp: FakeSMTP
    worker: WorkerProcess


@pytest.fixture
def mail_sink(celery_worker_factory, live_server) -> MailSink:
    """Run an SMTP sink and a Celery worker sending to it, with links to the live server."""
    with FakeSMTP() as smtp:
        worker = celery_worker_factory(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST=smtp.host,
            EMAIL_PORT=str(smtp.port),
            SITE_URL=live_server.url,
        )
        yield MailSink(smtp, worker)


def email_to(sink: MailSink, recipient: str) -> dict:
    """Wait for the one email to `recipient` at the sink and return it."""
    messages = wait_for(
        lambda: [m for m in sink.smtp.messages() if m["recipient"] == recipient],
        timeout=30,
        message=lambda: f"no email to {recipient}; worker log:\n{sink.worker.log()[-3000:]}",
    )
    assert len(messages) == 1, messages
    return messages[0]


def confirm_url_in(message: dict, live_server) -> str:
    match = re.search(r"^(\S+/confirm/\S+/)$", message["text"], re.MULTILINE)
    assert match, f"no confirmation link in:\n{message['text']}"
    url = match.group(1)
    assert url.startswith(f"{live_server.url}/petitions/"), url
    return url


def fill_sign_form(page: Page, text: dict, consent_wording: str, **values: str) -> None:
    """Fill every field a signer sees, by its label."""
    page.get_by_label(text["first_name"], exact=True).fill(values["first_name"])
    page.get_by_label(text["last_name"], exact=True).fill(values["last_name"])
    page.get_by_label(text["email"], exact=True).fill(values["email"])
    page.get_by_label(text["country"], exact=True).select_option(values["country"])
    page.get_by_label(text["postcode"], exact=True).fill(values["postcode"])
    page.get_by_label(consent_wording, exact=True).check()


def sign_and_confirm(
    page: Page, sink: MailSink, live_server, petition, text: dict, email: str
) -> None:
    """Sign on the open petition page, then confirm from the email, in the page's language."""
    page.get_by_role("button", name=text["sign"]).click()

    expect(page).to_have_url(re.compile(rf"/petitions/{petition.slug}/thanks/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(text["thanks"])
    expect(page.get_by_text(text["check_email"])).to_be_visible()
    assert not Signature.objects.get(petition=petition).is_confirmed

    message = email_to(sink, email)
    # strip(): Python's parser keeps the blank that folding puts before a long encoded subject.
    assert message["subject"].strip().startswith(text["email_subject"]), message["subject"]
    page.goto(confirm_url_in(message, live_server))
    expect(page.get_by_role("heading", level=1)).to_have_text(text["confirm_heading"])
    page.get_by_role("button", name=text["confirm"]).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(text["thanks"])
    expect(page.get_by_text(text["check_email"])).to_have_count(0)
    count = page.request.get(f"{live_server.url}/petitions/{petition.slug}/count.json")
    assert count.ok
    assert count.json()["count"] == 1


def test_sign_on_a_phone_in_english_and_confirm_from_the_email(phone, mail_sink, live_server):
    petition = english_petition()
    text = TEXT["en"]
    phone.goto(f"/petitions/{petition.slug}/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Free the journalists")

    fill_sign_form(
        phone,
        text,
        petition.consent_wording,
        first_name="Ann",
        last_name="Lee",
        email="ann@example.org",
        country="DE",
        postcode="10115",
    )
    sign_and_confirm(phone, mail_sink, live_server, petition, text, "ann@example.org")

    signature = Signature.objects.select_related("supporter").get(petition=petition)
    assert signature.is_confirmed
    assert signature.supporter.first_name == "Ann"
    assert str(signature.supporter.country) == "DE"


def test_sign_on_a_phone_in_russian_and_confirm_from_the_russian_email(
    phone, mail_sink, live_server
):
    petition = russian_petition()
    text = TEXT["ru"]
    phone.goto(f"/petitions/{petition.slug}/")
    # The header's language link, which is the page itself with ?lang=ru.
    phone.get_by_role("navigation").get_by_role("link", name="Русский").click()
    expect(phone).to_have_url(re.compile(r"\?lang=ru$"))
    expect(phone.locator("html")).to_have_attribute("lang", "ru")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Свободу журналистам")
    for label in ("first_name", "last_name", "email", "country", "postcode"):
        expect(phone.get_by_label(text[label], exact=True)).to_be_visible()

    fill_sign_form(
        phone,
        text,
        RUSSIAN_CONSENT,
        first_name="Анна",
        last_name="Иванова",
        email="anna@example.org",
        country="DE",
        postcode="10115",
    )
    sign_and_confirm(phone, mail_sink, live_server, petition, text, "anna@example.org")

    assert Signature.objects.get(petition=petition).supporter.language == "ru"


def scroll_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_pages_fit_a_phone_without_sideways_scrolling(phone, language):
    petition = english_petition() if language == "en" else russian_petition()
    text = TEXT[language]

    phone.goto(f"/petitions/{petition.slug}/?lang={language}")
    sign = phone.get_by_role("button", name=text["sign"])
    expect(sign).to_be_visible()
    assert scroll_width(phone) <= PHONE_WIDTH
    assert sign.bounding_box()["height"] >= MIN_TOUCH_TARGET_PX

    # The thank-you page at its widest: the email notice, share links and the resend form open.
    phone.goto(f"/petitions/{petition.slug}/thanks/?confirm=1&lang={language}")
    expect(phone.get_by_text(text["check_email"])).to_be_visible()
    phone.get_by_text(text["resend"]).click()
    expect(phone.get_by_label(text["resend_email"], exact=True)).to_be_visible()
    assert scroll_width(phone) <= PHONE_WIDTH


def test_a_mistyped_email_is_marked_and_the_rest_of_the_form_kept(phone):
    petition = english_petition()
    text = TEXT["en"]
    phone.goto(f"/petitions/{petition.slug}/")
    fill_sign_form(
        phone,
        text,
        petition.consent_wording,
        first_name="Ann",
        last_name="Lee",
        email="ann@example",
        country="DE",
        postcode="10115",
    )
    phone.get_by_role("button", name=text["sign"]).click()

    expect(phone.get_by_role("alert")).to_contain_text("Please check the highlighted fields.")
    # The error sits in the field's label, so a screen reader reads it with the field.
    email = phone.get_by_label(re.compile(r"^Email\b"))
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_name(re.compile("Please check your email address"))
    expect(email).to_have_value("ann@example")
    expect(phone.get_by_label("First name", exact=True)).to_have_value("Ann")
    expect(phone.get_by_label("Last name", exact=True)).to_have_value("Lee")
    expect(phone.get_by_label("Country", exact=True)).to_have_value("DE")
    expect(phone.get_by_label(text["postcode"], exact=True)).to_have_value("10115")
    expect(phone.get_by_label(petition.consent_wording, exact=True)).to_be_checked()
    for other in ("First name", "Last name", "Country"):
        expect(phone.get_by_label(other, exact=True)).not_to_have_attribute("aria-invalid", "true")

    assert Signature.objects.count() == 0
    assert Supporter.objects.count() == 0


FOCUSED = """() => {
    const element = document.activeElement;
    return element.name || element.tagName.toLowerCase();
}"""


def test_the_form_is_reached_in_order_with_the_tab_key_alone(phone):
    petition = english_petition()
    phone.goto(f"/petitions/{petition.slug}/")

    focused = []
    while "button" not in focused and len(focused) < 30:
        phone.keyboard.press("Tab")
        focused.append(phone.evaluate(FOCUSED))

    assert "website" not in focused, focused  # the honeypot is for bots only
    assert "first_name" in focused, focused
    form_order = focused[focused.index("first_name") :]
    assert form_order == [
        "first_name",
        "last_name",
        "email",
        "country",
        "postcode",
        "consent",
        "button",
    ], focused


def test_the_petition_page_is_light_and_loads_nothing_from_other_hosts(phone, live_server):
    petition = english_petition()
    requests, responses = [], []
    phone.on("request", lambda request: requests.append(request.url))
    phone.on("response", lambda response: responses.append(response))

    phone.goto(f"/petitions/{petition.slug}/", wait_until="load")
    expect(phone.get_by_role("button", name="Sign the petition")).to_be_visible()

    # Decoded sizes: what the phone must parse, whatever the compression on the wire.
    sizes = {response.url: len(response.body()) for response in responses}
    assert sum(sizes.values()) < MAX_PAGE_BYTES, sizes
    server = urlsplit(live_server.url).netloc
    assert [url for url in requests if urlsplit(url).netloc != server] == []
