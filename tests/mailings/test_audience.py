import pytest
from django.db import connection, transaction

from mailings.selectors import (
    AudienceConditions,
    audience_counts,
    audience_for,
    mailing_audience,
    mailing_audience_counts,
)
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


def test_conditions_not_saved_yet_pick_the_audience_a_saved_mailing_would():
    """The admin's live count uses conditions from the form; the send uses the saved mailing."""
    volunteers, donors = TagFactory(name="volunteers"), TagFactory(name="donors")
    petition = PetitionFactory()
    SupporterFactory(email="v@example.org").tags.add(volunteers)
    SupporterFactory(email="vd@example.org").tags.add(volunteers, donors)
    ru = SupporterFactory(email="ru@example.org", language="ru", country="LT")
    ru.tags.add(volunteers)
    SignatureFactory(petition=petition, supporter=SupporterFactory(email="s@example.org"))
    mailing = MailingFactory(audience_language="ru", audience_country="lt")
    mailing.audience_include_tags.add(volunteers)
    mailing.audience_exclude_tags.add(donors)

    conditions = AudienceConditions.of(mailing)
    assert conditions == AudienceConditions(
        include_tag_ids=frozenset({volunteers.pk}),
        exclude_tag_ids=frozenset({donors.pk}),
        language="ru",
        country="lt",
    )
    assert set(audience_for(conditions)) == set(mailing_audience(mailing)) == {ru}
    assert audience_counts(conditions) == mailing_audience_counts(mailing)

    unsaved = AudienceConditions(not_signed_petition_id=petition.pk)
    assert set(audience_for(unsaved).values_list("email", flat=True)) == {
        "v@example.org",
        "vd@example.org",
        "ru@example.org",
    }
    counts = audience_counts(AudienceConditions(signed_petition_id=petition.pk))
    assert (counts.count, counts.by_language) == (1, {"en": 1, "ru": 0})


def test_counting_leaves_the_callers_transaction_as_it_found_it():
    """The count plans on one process without JIT on PostgreSQL, and only the count does."""

    def jit():
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SHOW jit")
            jit = cursor.fetchone()[0]
            cursor.execute("SHOW max_parallel_workers_per_gather")
            return jit, cursor.fetchone()[0]

    SupporterFactory(language="ru")
    with transaction.atomic():
        before = jit()
        assert audience_counts(AudienceConditions()).by_language == {"en": 0, "ru": 1}
        assert jit() == before
        assert Supporter.objects.count() == 1  # the transaction is still usable


def test_a_language_rally_does_not_speak_is_counted_under_its_own_code():
    SupporterFactory(language="en")
    stray = SupporterFactory(language="ru")
    Supporter.objects.filter(pk=stray.pk).update(language="de")  # written around the forms
    counts = audience_counts(AudienceConditions())
    assert (counts.count, counts.by_language) == (2, {"en": 1, "ru": 0, "de": 1})
