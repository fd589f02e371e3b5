import pytest

from mailings.selectors import mailing_audience, mailing_audience_counts
from supporters.models import Supporter
from tests.factories import (
    MailingFactory,
    PetitionFactory,
    SignatureFactory,
    SupporterFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db


def audience_emails(mailing):
    return set(mailing_audience(mailing).values_list("email", flat=True))


def test_audience_is_subscribed_supporters_only():
    SupporterFactory(email="in@example.org")
    for status in ("unsubscribed", "bounced", "complained"):
        SupporterFactory(email=f"{status}@example.org", status=status)
    assert audience_emails(MailingFactory()) == {"in@example.org"}


def test_everyone_subscribed_who_has_not_signed():
    petition = PetitionFactory()
    signer = SupporterFactory(email="signer@example.org")
    SignatureFactory(petition=petition, supporter=signer)
    SignatureFactory(
        petition=PetitionFactory(), supporter=SupporterFactory(email="other@example.org")
    )
    SupporterFactory(email="new@example.org")
    mailing = MailingFactory(audience_not_signed_petition=petition)
    assert audience_emails(mailing) == {"other@example.org", "new@example.org"}

    mailing.audience_not_signed_petition = None
    mailing.audience_signed_petition = petition
    assert audience_emails(mailing) == {"signer@example.org"}


def test_tags_language_and_country_narrow_the_audience():
    volunteers, donors = TagFactory(name="volunteers"), TagFactory(name="donors")
    SupporterFactory(email="v@example.org").tags.add(volunteers)
    both = SupporterFactory(email="vd@example.org")
    both.tags.add(volunteers, donors)
    SupporterFactory(email="ru@example.org", language="ru", country="LT").tags.add(volunteers)
    SupporterFactory(email="none@example.org")

    mailing = MailingFactory()
    mailing.audience_include_tags.add(volunteers)
    assert audience_emails(mailing) == {"v@example.org", "vd@example.org", "ru@example.org"}
    mailing.audience_exclude_tags.add(donors)
    assert audience_emails(mailing) == {"v@example.org", "ru@example.org"}
    mailing.audience_language = "ru"
    assert audience_emails(mailing) == {"ru@example.org"}
    mailing.audience_language = ""
    mailing.audience_country = "lt"
    assert audience_emails(mailing) == {"ru@example.org"}
    assert Supporter.objects.count() == 4


def test_audience_counts_break_down_by_language_with_every_language_present():
    petition = PetitionFactory()
    SupporterFactory.create_batch(3, language="ru")
    SupporterFactory(language="en")
    signed = SupporterFactory(language="en")
    SignatureFactory(petition=petition, supporter=signed)
    SupporterFactory(language="ru", status=Supporter.Status.UNSUBSCRIBED)
    mailing = MailingFactory(audience_not_signed_petition=petition)
    counts = mailing_audience_counts(mailing)
    assert (counts.count, counts.by_language) == (4, {"en": 1, "ru": 3})
    assert mailing_audience_counts(MailingFactory(audience_language="en")).by_language == {
        "en": 2,
        "ru": 0,
    }
