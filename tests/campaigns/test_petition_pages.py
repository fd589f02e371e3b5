"""The public petition pages beyond the basic sign: confirmation by email, personal links,
counts and goals, share refs, languages and the embed page (abuse limits: test_petition_abuse).

The test client talks to the real URL configuration, the test database and the test Redis.
"""

import re

import pytest
from django.core import mail, signing

from campaigns import counters
from campaigns.links import make_confirmation_token, make_petition_token
from campaigns.models import PetitionTranslation, Signature
from campaigns.tasks import signature_confirmation_email_task
from supporters.models import Supporter
from tests.campaigns.test_sign import VALID, sign
from tests.factories import PetitionFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_tasks(monkeypatch):
    """Record tasks queued with .delay() instead of sending them to the broker."""
    calls = []
    monkeypatch.setattr(
        signature_confirmation_email_task, "delay", lambda *args: calls.append(args)
    )
    return calls


def confirm_url_from(message) -> str:
    return re.search(r"http://\S+/confirm/\S+/", message.body).group(0)


# --- Double opt-in --------------------------------------------------------------------------


def test_a_signature_that_needs_confirmation_is_not_counted_until_confirmed(
    client, django_capture_on_commit_callbacks, queued_tasks, settings
):
    settings.SITE_URL = "http://testserver"
    petition = PetitionFactory(requires_confirmation=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = sign(client, petition)
    assert response.status_code == 302
    assert response["Location"] == f"/petitions/{petition.slug}/thanks/?confirm=1"
    assert "check your email" in client.get(response["Location"]).content.decode()
    signature = Signature.objects.get()
    assert signature.confirmed_at is None
    assert client.get(f"/petitions/{petition.slug}/count.json").json()["count"] == 0

    # The task queued after commit sends the email, in the signer's language.
    assert queued_tasks == [(signature.pk,)]
    signature_confirmation_email_task(signature.pk)
    (message,) = mail.outbox
    assert message.to == ["ann.lee@example.org"]
    assert message.subject.startswith("Please confirm your signature")
    url = confirm_url_from(message)

    # GET shows a button and changes nothing: mail scanners follow links.
    assert client.get(url).status_code == 200
    signature.refresh_from_db()
    assert signature.confirmed_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 302
    signature.refresh_from_db()
    assert signature.confirmed_at is not None
    assert client.get(f"/petitions/{petition.slug}/count.json").json()["count"] == 1

    # The link again: harmless, counted once.
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 302
    counters.petition_counts_reconcile()
    assert client.get(f"/petitions/{petition.slug}/count.json").json()["count"] == 1


def test_a_tampered_or_expired_confirmation_link_is_refused_with_a_way_back(client, monkeypatch):
    import time

    petition = PetitionFactory(requires_confirmation=True)
    signature = SignatureFactory(petition=petition, confirmed_at=None)
    token = make_confirmation_token(signature_id=signature.pk)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.post(f"/petitions/{petition.slug}/confirm/{tampered}/")
    assert response.status_code == 400
    assert f'href="/petitions/{petition.slug}/"' in response.content.decode()

    # A link sent eight days ago has expired.
    now = time.time()
    monkeypatch.setattr(signing.time, "time", lambda: now - 8 * 24 * 3600)
    old = make_confirmation_token(signature_id=signature.pk)
    monkeypatch.undo()
    assert client.post(f"/petitions/{petition.slug}/confirm/{old}/").status_code == 400
    assert client.get(f"/petitions/{petition.slug}/confirm/{token}/").status_code == 200
    signature.refresh_from_db()
    assert signature.confirmed_at is None


def test_a_confirmation_link_posted_to_another_petition_is_refused_and_confirms_nothing(
    client, django_capture_on_commit_callbacks
):
    petition, other = PetitionFactory(requires_confirmation=True), PetitionFactory()
    supporter = SupporterFactory(status=Supporter.Status.UNSUBSCRIBED)
    signature = SignatureFactory(
        petition=petition, supporter=supporter, confirmed_at=None, consented=True
    )
    token = make_confirmation_token(signature_id=signature.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/petitions/{other.slug}/confirm/{token}/")

    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()
    signature.refresh_from_db()
    assert signature.confirmed_at is None
    assert Supporter.objects.get(pk=supporter.pk).status == Supporter.Status.UNSUBSCRIBED
    counters.petition_counts_reconcile()
    assert client.get(f"/petitions/{petition.slug}/count.json").json()["count"] == 0
    # On its own petition the same link still confirms.
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/petitions/{petition.slug}/confirm/{token}/").status_code == 302
    signature.refresh_from_db()
    assert signature.confirmed_at is not None


@pytest.mark.parametrize(
    ("title", "subject_title"),
    [
        ('Free "Tom" & Jerry\'s <friends>', 'Free "Tom" & Jerry\'s <friends>'),
        ("Free them\r\nBcc: someone@example.org", "Free them Bcc: someone@example.org"),
    ],
)
def test_the_confirmation_subject_shows_the_title_as_written_on_one_line(
    settings, title, subject_title
):
    settings.SITE_URL = "http://testserver"
    petition = PetitionFactory(title=title, requires_confirmation=True)
    signature = SignatureFactory(petition=petition, confirmed_at=None)

    signature_confirmation_email_task(signature.pk)

    (message,) = mail.outbox
    assert message.subject == f"Please confirm your signature: {subject_title}"
    assert f'Thank you for signing "{title}"' in message.body
    # The HTML part escapes it, as HTML must.
    assert "<friends>" not in message.alternatives[0][0]


def test_resend_answers_the_same_for_known_and_unknown_emails(
    client, django_capture_on_commit_callbacks, queued_tasks
):
    petition = PetitionFactory(requires_confirmation=True)
    waiting = SignatureFactory(
        petition=petition, confirmed_at=None, supporter=SupporterFactory(email="wait@example.org")
    )
    SignatureFactory(petition=petition, supporter=SupporterFactory(email="done@example.org"))
    url = f"/petitions/{petition.slug}/confirm-again/"
    answers = []
    for email in ("wait@example.org", "done@example.org", "nobody@example.org"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"email": email})
        answers.append((response.status_code, _without_csrf(response.content.decode())))
    assert answers[0] == answers[1] == answers[2]
    assert queued_tasks == [(waiting.pk,)]  # only the one waiting for confirmation


def test_resend_with_a_bad_email_says_so_beside_the_field(client):
    petition = PetitionFactory(requires_confirmation=True)
    response = client.post(f"/petitions/{petition.slug}/confirm-again/", {"email": "ann@"})
    assert response.status_code == 400
    assert "Please check your email address" in response.content.decode()


def test_a_confirmed_signature_gets_no_confirmation_email():
    signature = SignatureFactory(petition=PetitionFactory(requires_confirmation=True))
    signature_confirmation_email_task(signature.pk)
    assert mail.outbox == []


# --- Personal links -------------------------------------------------------------------------


def test_a_personal_link_greets_by_first_name_and_signs_with_one_button(
    client, django_capture_on_commit_callbacks
):
    from tests.factories import MailingFactory

    mailing = MailingFactory()
    petition = PetitionFactory(requires_confirmation=True)
    supporter = SupporterFactory(email="olga.ivanova@example.org", first_name="Olga")
    token = make_petition_token(
        supporter_id=supporter.pk, mailing_id=mailing.pk, petition_id=petition.pk
    )
    page = client.get(f"/petitions/{petition.slug}/?t={token}").content.decode()
    assert "Hello, Olga!" in page
    assert "olga.ivanova@example.org" not in page and "o•••@example.org" in page
    assert 'name="email"' not in page  # nothing to type
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/petitions/{petition.slug}/?t={token}", {"t": token})
    assert response.status_code == 302 and "confirm=1" not in response["Location"]
    signature = Signature.objects.get()
    assert signature.supporter == supporter
    assert signature.mailing == mailing and signature.source == "mailing"
    # The link came from our email to them: their address is proven.
    assert signature.confirmed_at is not None


def test_a_tampered_personal_link_falls_back_to_the_normal_form(client):
    petition = PetitionFactory()
    supporter = SupporterFactory(first_name="Olga")
    token = make_petition_token(supporter_id=supporter.pk, mailing_id=None, petition_id=petition.pk)
    page = client.get(f"/petitions/{petition.slug}/?t={token[:-3]}xyz").content.decode()
    assert "Olga" not in page and 'name="email"' in page
    # Posting a forged token signs nobody.
    response = client.post(f"/petitions/{petition.slug}/", {"t": token[:-3] + "xyz"})
    assert response.status_code == 400 and not Signature.objects.exists()


# --- Counts, goals and share refs ---------------------------------------------------------


def test_count_json_is_exact_cacheable_and_survives_losing_redis(client):
    from config.redis import redis_client

    petition = PetitionFactory(goal=3)
    for _ in range(2):
        SignatureFactory(petition=petition)
    SignatureFactory(petition=petition, confirmed_at=None)  # unconfirmed: not public
    response = client.get(f"/petitions/{petition.slug}/count.json")
    assert response.json() == {"count": 2, "goal": 3, "open": True}
    assert "public" in response["Cache-Control"] and "max-age=10" in response["Cache-Control"]

    sign(client, petition)  # bumps the Redis count after commit…
    redis_client().flushdb()  # …and Redis forgetting everything is recounted from the table
    assert client.get(f"/petitions/{petition.slug}/count.json").json()["count"] == 3


def test_the_goal_rises_to_the_next_round_number_when_reached():
    from campaigns.selectors import petition_goal

    petition = PetitionFactory.build(goal=1000)
    assert [petition_goal(petition, n) for n in (0, 999, 1000, 2499, 2500, 12_000)] == [
        1000,
        1000,
        2500,
        2500,
        5000,
        25_000,
    ]


def test_reconcile_corrects_a_count_that_drifted_from_the_table():
    from config.redis import redis_client

    petition = PetitionFactory()
    SignatureFactory(petition=petition)
    assert counters.petition_count(petition.pk) == 1
    redis_client().set(f"rally:petition:{petition.pk}:signatures", 40)
    assert counters.petition_counts_reconcile() == 1
    assert counters.petition_count(petition.pk) == 1


def test_a_share_ref_in_the_link_is_recorded_on_the_signature_it_brings(client):
    petition = PetitionFactory()
    page = client.get(f"/petitions/{petition.slug}/?source=telegram").content.decode()
    assert 'name="source" value="telegram"' in page
    sign(client, petition, source="telegram")
    assert Signature.objects.get().source == "telegram"
    sign(client, petition, email="other@example.org", source="=cmd|' /C calc'!A0")
    assert Signature.objects.get(supporter__email="other@example.org").source == ""


def test_the_thank_you_page_offers_share_links_carrying_their_channel_and_a_next_petition(
    client, settings
):
    settings.SITE_URL = "https://rally.example.org"
    petition = PetitionFactory()
    next_one = PetitionFactory(title="Release the journalists")
    page = client.get(f"/petitions/{petition.slug}/thanks/").content.decode()
    for channel in ("whatsapp", "telegram", "email", "x", "facebook"):
        assert f"source%3D{channel}" in page, channel
    assert f"https://rally.example.org/petitions/{petition.slug}/?source=link" in page
    assert next_one.title in page


# --- Languages ----------------------------------------------------------------------------


def test_russian_interface_from_the_url_and_the_signer_language_is_stored(client):
    petition = PetitionFactory(language="ru", title="Свободу политзаключённым")
    page = client.get(f"/petitions/{petition.slug}/?lang=ru").content.decode()
    assert '<html lang="ru">' in page and "Подписать петицию" in page and "Страна" in page
    response = client.post(
        f"/petitions/{petition.slug}/?lang=ru", {**VALID, "email": "bad@", "country": ""}
    )
    errors = response.content.decode()
    assert "Пожалуйста, проверьте адрес эл. почты" in errors and "выберите страну" in errors
    # The cookie keeps the choice; the signer's language is stored for their emails.
    sign(client, petition)
    assert Supporter.objects.get().language == "ru"


def test_accept_language_chooses_the_interface(client):
    petition = PetitionFactory()
    page = client.get(f"/petitions/{petition.slug}/", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9")
    assert "Подписать петицию" in page.content.decode()


def test_petition_content_is_shown_in_the_reader_language_with_its_own_consent_wording(client):
    petition = PetitionFactory(title="Free them", consent_wording="Email me.")
    PetitionTranslation.objects.create(
        petition=petition,
        language="ru",
        title="Освободите их",
        body="<p>Текст</p><script>alert(1)</script>",
        consent_wording="Присылайте мне письма.",
    )
    page = client.get(f"/petitions/{petition.slug}/?lang=ru").content.decode()
    assert "Освободите их" in page and "Присылайте мне письма." in page
    assert "alert(1)" not in page  # the translation body is sanitised too
    sign(client, petition)
    assert Supporter.objects.get().consent_records.get().wording == "Присылайте мне письма."


# --- Embed ----------------------------------------------------------------------------------


def test_the_embed_page_may_be_framed_and_signs_on_our_origin(client):
    petition = PetitionFactory()
    response = client.get(f"/petitions/{petition.slug}/embed/")
    assert response.status_code == 200 and "X-Frame-Options" not in response
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
    assert client.get(f"/petitions/{petition.slug}/")["X-Frame-Options"] == "DENY"
    response = client.post(f"/petitions/{petition.slug}/embed/", VALID)
    assert response["Location"] == f"/petitions/{petition.slug}/embed/thanks/"
    assert Signature.objects.count() == 1


def test_the_embed_form_is_protected_by_csrf(settings):
    from django.test import Client

    petition = PetitionFactory()
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(f"/petitions/{petition.slug}/embed/", VALID).status_code == 403
    assert not Signature.objects.exists()


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_a_personal_link_confirms_an_earlier_unconfirmed_signature(
    client, django_capture_on_commit_callbacks
):
    petition = PetitionFactory(requires_confirmation=True)
    supporter = SupporterFactory(first_name="Olga")
    SignatureFactory(petition=petition, supporter=supporter, confirmed_at=None)
    token = make_petition_token(supporter_id=supporter.pk, mailing_id=None, petition_id=petition.pk)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/petitions/{petition.slug}/?t={token}", {"t": token})
    assert Signature.objects.get().confirmed_at is not None
    assert client.get(f"/petitions/{petition.slug}/count.json").json()["count"] == 1
