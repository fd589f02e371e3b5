"""One appeal, several languages: each supporter is given the version in their language."""

import pytest

from mailings.content.rendering import CompiledMailing
from mailings.models import Delivery, Mailing, MailingVersion, OutboxMessage
from mailings.sending import delivery_snapshot, mailing_send
from tests.factories import MAILING_FORM_NO_VERSIONS, MailingFactory, SupporterFactory
from tests.processes import wait_for

pytestmark = pytest.mark.django_db


def test_the_snapshot_records_the_version_each_supporter_gets():
    mailing = MailingFactory()
    MailingVersion.objects.create(
        mailing=mailing, language="ru", subject="Подпишите", html_body="<p>Привет</p>"
    )
    russian = SupporterFactory(language="ru")
    english = SupporterFactory(language="en")
    assert delivery_snapshot(mailing_id=mailing.pk) == 2
    versions = dict(Delivery.objects.values_list("supporter_id", "version_language"))
    # No English version: the English reader gets the mailing's own (default) content.
    assert versions == {russian.pk: "ru", english.pk: ""}


def test_without_versions_everyone_gets_the_default():
    mailing = MailingFactory()
    SupporterFactory(language="ru")
    delivery_snapshot(mailing_id=mailing.pk)
    assert list(Delivery.objects.values_list("version_language", flat=True)) == [""]


def russian_version(mailing, **changes):
    values = {
        "subject": "{{ first_name|default:'Друг' }}, подпишите",
        "preheader": "Прочтите",
        "html_body": "<p>Здравствуйте, {{ first_name }}!</p>",
        "text_body": "",
        **changes,
    }
    return MailingVersion.objects.create(mailing=mailing, language="ru", **values)


def test_each_version_renders_in_its_language_and_the_default_for_the_rest():
    mailing = MailingFactory()
    russian_version(mailing)
    compiled = CompiledMailing(mailing)
    assert (compiled.version_for("ru"), compiled.version_for("en")) == ("ru", "")
    fields = {"first_name": "Ivan", "unsubscribe_url": "https://x.example/u/1/"}
    russian = compiled.render(fields, "ru")
    assert russian.subject == "Ivan, подпишите"
    assert "Здравствуйте, Ivan!" in russian.html and "Здравствуйте, Ivan!" in russian.text
    assert 'lang="ru"' in russian.html
    assert compiled.render(fields, "").subject == "Ivan, sign now"
    assert compiled.render(fields, "de").subject == "Ivan, sign now"


@pytest.mark.django_db(transaction=True)
def test_a_worker_sends_each_supporter_their_languages_version_once(celery_worker_factory):
    mailing = MailingFactory()
    russian_version(mailing)
    ivan = SupporterFactory(first_name="Ivan", language="ru", email="ivan@example.org")
    ann = SupporterFactory(first_name="Ann", language="en", email="ann@example.org")
    celery_worker_factory(EMAIL_BACKEND="mailings.sending.esp.outbox.EmailBackend")
    mailing_send(mailing=mailing)
    wait_for(
        lambda: Mailing.objects.get(pk=mailing.pk).status == Mailing.Status.SENT,
        timeout=60,
        message="the mailing did not finish",
    )
    subjects = dict(OutboxMessage.objects.values_list("to", "subject"))
    assert subjects == {"ivan@example.org": "Ivan, подпишите", "ann@example.org": "Ann, sign now"}
    ledger = dict(Delivery.objects.values_list("supporter_id", "version_language"))
    assert ledger == {ivan.pk: "ru", ann.pk: ""}


def version_form(mailing, **version):
    return {
        **MAILING_FORM_NO_VERSIONS,
        "campaign": mailing.campaign_id, "petition": mailing.petition_id, "name": mailing.name,
        "subject": mailing.subject, "preheader": "",
        "sender": f"{mailing.from_name} <{mailing.from_email}>", "html_body": mailing.html_body,
        "text_body": mailing.text_body, "audience_language": "", "audience_country": "",
        "versions-TOTAL_FORMS": "1",
        **{f"versions-0-{name}": value for name, value in version.items()},
    }  # fmt: skip


def test_a_version_is_checked_as_the_mailing_is_and_a_bad_one_saves_nothing(admin_client):
    mailing = MailingFactory()
    url = f"/admin/mailings/mailing/{mailing.pk}/change/"
    refused = admin_client.post(
        url,
        version_form(
            mailing,
            language="ru",
            subject="{{ frist_name }}",
            html_body="<p>Привет</p>",
            text_body="",
        ),
    )
    assert refused.status_code == 200
    assert "unknown merge field frist_name" in refused.content.decode()
    assert not MailingVersion.objects.exists()
    saved = admin_client.post(
        url,
        version_form(
            mailing,
            language="ru",
            subject="Подпишите",
            html_body='<p onclick="x()">Привет</p><script>x()</script>',
            text_body="",
        ),
    )
    assert saved.status_code == 302
    version = MailingVersion.objects.get()
    assert version.html_body == "<p>Привет</p>"


def test_versions_of_a_mailing_that_went_out_cannot_be_changed(admin_client):
    mailing = MailingFactory(status=Mailing.Status.SENT)
    version = russian_version(mailing)
    page = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/").content.decode()
    assert "Прочтите" in page
    assert 'name="versions-0-subject"' not in page
    version.refresh_from_db()
    assert version.subject.endswith("подпишите")


def test_the_preview_shows_the_russian_version_to_a_russian_reader(admin_client):
    mailing = MailingFactory()
    russian_version(mailing)
    ivan = SupporterFactory(first_name="Ivan", language="ru")
    url = f"/admin/mailings/mailing/{mailing.pk}/preview/"
    page = admin_client.get(url, {"supporter": ivan.pk}).content.decode()
    assert '<td class="preview-subject">Ivan, подпишите</td>' in page
    assert '<td class="preview-preheader">Прочтите</td>' in page
    english = admin_client.get(url, {"supporter": ivan.pk, "language": "en"}).content.decode()
    assert '<td class="preview-subject">Ivan, sign now</td>' in english
    assert "There is no “en” version: this is the default content." in english
