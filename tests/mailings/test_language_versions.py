"""One appeal, several languages: each supporter is given the version in their language."""

import pytest

from mailings.models import Delivery, MailingVersion
from mailings.services import delivery_snapshot
from tests.factories import MailingFactory, SupporterFactory

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
