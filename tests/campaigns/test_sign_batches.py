"""signatures_record: a batch means what the same requests one after another would mean.

On PostgreSQL the batch is one set-based statement, on SQLite a loop; these tests run on both
(CI runs the suite on each), with several requests in one batch as a surge makes them.
"""

import pytest
from django.core import mail

from campaigns.counters import petition_count
from campaigns.models import Signature
from campaigns.signing import SignatureInput, SignatureRequest, signatures_record
from supporters.models import ConsentRecord, Supporter
from tests.factories import MailingFactory, PetitionFactory, SignatureFactory, SupporterFactory

pytestmark = pytest.mark.django_db


def request_for(petition, email, *, consent=True, **changes):
    signer = SignatureInput(
        email=email,
        first_name=changes.pop("first_name", "Ann"),
        last_name=changes.pop("last_name", "Lee"),
        country=changes.pop("country", "GB"),
        postcode=changes.pop("postcode", ""),
        consent=consent,
        consent_wording=f"I agree ({email})" if consent else "",
        language="en",
    )
    return SignatureRequest(
        petition_id=petition.pk,
        signer=signer,
        source_url=f"http://testserver/petitions/{petition.slug}/",
        ip="203.0.113.0",
        supporter_source=petition.slug,
        **changes,
    )


def record(requests, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return signatures_record(requests)


def test_a_batch_of_new_signers_makes_each_supporter_signature_and_consent(
    django_capture_on_commit_callbacks,
):
    petition = PetitionFactory()
    emails = [f"signer{n}@example.org" for n in range(5)]
    outcomes = record(
        [request_for(petition, email) for email in emails], django_capture_on_commit_callbacks
    )
    assert [outcome.created for outcome in outcomes] == [True] * 5
    assert {o.signature_id for o in outcomes} == set(Signature.objects.values_list("pk", flat=True))
    assert set(Supporter.objects.values_list("email", flat=True)) == set(emails)
    assert set(Supporter.objects.values_list("status", flat=True)) == {"subscribed"}
    assert sorted(ConsentRecord.objects.values_list("wording", flat=True)) == sorted(
        f"I agree ({email})" for email in emails
    )
    assert ConsentRecord.objects.first().ip_truncated == "203.0.113.0"
    assert petition_count(petition.pk) == 5


def test_the_same_signer_twice_in_one_batch_signs_once(django_capture_on_commit_callbacks):
    petition = PetitionFactory()
    outcomes = record(
        [
            request_for(petition, "twice@example.org", consent=False, first_name="First"),
            request_for(petition, "twice@example.org", consent=True, first_name="Second"),
        ],
        django_capture_on_commit_callbacks,
    )
    assert [outcome.created for outcome in outcomes] == [True, False]
    supporter = Supporter.objects.get()
    # The first request describes the supporter; the consent of the second still counts.
    assert supporter.first_name == "First"
    assert supporter.status == Supporter.Status.SUBSCRIBED
    assert Signature.objects.count() == 1 and ConsentRecord.objects.count() == 1
    assert petition_count(petition.pk) == 1


def test_a_known_supporter_keeps_their_details_and_gets_blanks_filled(
    django_capture_on_commit_callbacks,
):
    petition = PetitionFactory()
    SupporterFactory(email="known@example.org", first_name="Real", last_name="Name", postcode="")
    record(
        [request_for(petition, "known@example.org", first_name="Fake", postcode="N1 9GU")],
        django_capture_on_commit_callbacks,
    )
    supporter = Supporter.objects.get()
    assert (supporter.first_name, supporter.last_name) == ("Real", "Name")
    assert supporter.postcode == "N1 9GU"


def test_consent_resubscribes_who_left_but_never_a_bounced_address(
    django_capture_on_commit_callbacks,
):
    petition = PetitionFactory()
    SupporterFactory(email="left@example.org", status=Supporter.Status.UNSUBSCRIBED)
    SupporterFactory(email="bounced@example.org", status=Supporter.Status.BOUNCED)
    SupporterFactory(email="silent@example.org", status=Supporter.Status.UNSUBSCRIBED)
    record(
        [
            request_for(petition, "left@example.org"),
            request_for(petition, "bounced@example.org"),
            request_for(petition, "silent@example.org", consent=False),
        ],
        django_capture_on_commit_callbacks,
    )
    status = dict(Supporter.objects.values_list("email", "status"))
    assert status == {
        "left@example.org": "subscribed",
        "bounced@example.org": "bounced",
        "silent@example.org": "unsubscribed",
    }
    assert Supporter.objects.get(email="left@example.org").unsubscribed_at is None
    assert Signature.objects.count() == 3


def test_a_closed_petition_in_a_batch_stores_nothing_for_it(django_capture_on_commit_callbacks):
    open_petition = PetitionFactory()
    closed = PetitionFactory(is_open=False)
    outcomes = record(
        [
            request_for(closed, "late@example.org"),
            request_for(open_petition, "ontime@example.org"),
        ],
        django_capture_on_commit_callbacks,
    )
    assert outcomes[0].closed and not outcomes[0].created
    assert outcomes[1].created and not outcomes[1].closed
    assert list(Supporter.objects.values_list("email", flat=True)) == ["ontime@example.org"]
    assert ConsentRecord.objects.count() == 1
    assert list(Signature.objects.values_list("petition_id", flat=True)) == [open_petition.pk]


def test_signing_again_changes_nothing_and_is_not_counted(django_capture_on_commit_callbacks):
    petition = PetitionFactory()
    earlier = SignatureFactory(petition=petition, supporter__email="again@example.org")
    outcomes = record(
        [request_for(petition, "again@example.org")], django_capture_on_commit_callbacks
    )
    assert not outcomes[0].created and not outcomes[0].closed
    assert list(Signature.objects.values_list("pk", flat=True)) == [earlier.pk]
    assert petition_count(petition.pk) == 1


def test_confirmation_petitions_mail_new_signers_and_count_them_only_when_confirmed(
    django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    petition = PetitionFactory(requires_confirmation=True)
    outcomes = record(
        [request_for(petition, "a@example.org"), request_for(petition, "b@example.org")],
        django_capture_on_commit_callbacks,
    )
    assert all(outcome.awaiting_confirmation for outcome in outcomes)
    assert not Signature.objects.filter(confirmed_at__isnull=False).exists()
    assert sorted(message.to[0] for message in mail.outbox) == ["a@example.org", "b@example.org"]
    assert petition_count(petition.pk) == 0


def test_a_personal_link_confirms_an_earlier_unconfirmed_signature(
    django_capture_on_commit_callbacks,
):
    petition = PetitionFactory(requires_confirmation=True)
    mailing = MailingFactory(petition=petition, campaign=petition.campaign)
    earlier = SignatureFactory(
        petition=petition, supporter__email="invited@example.org", confirmed_at=None
    )
    outcomes = record(
        [
            request_for(
                petition,
                "invited@example.org",
                consent=False,
                confirmed=True,
                mailing_id=mailing.pk,
            )
        ],
        django_capture_on_commit_callbacks,
    )
    assert not outcomes[0].created and not outcomes[0].awaiting_confirmation
    earlier.refresh_from_db()
    assert earlier.confirmed_at is not None
    assert petition_count(petition.pk) == 1


def test_a_link_from_a_deleted_mailing_still_signs_without_credit(
    django_capture_on_commit_callbacks,
):
    petition = PetitionFactory()
    mailing = MailingFactory(petition=petition, campaign=petition.campaign)
    mailing_id = mailing.pk
    mailing.delete()
    outcomes = record(
        [request_for(petition, "old-link@example.org", confirmed=True, mailing_id=mailing_id)],
        django_capture_on_commit_callbacks,
    )
    assert outcomes[0].created
    assert Signature.objects.get().mailing_id is None


def test_on_a_confirmation_petition_consent_subscribes_only_once_confirmed(
    django_capture_on_commit_callbacks,
):
    from campaigns.signing import signature_confirm

    petition = PetitionFactory(requires_confirmation=True)
    SupporterFactory(email="left@example.org", status=Supporter.Status.UNSUBSCRIBED)
    outcomes = record(
        [
            request_for(petition, "new@example.org"),
            request_for(petition, "left@example.org"),
            request_for(petition, "no-consent@example.org", consent=False),
        ],
        django_capture_on_commit_callbacks,
    )
    # Nobody has proved these addresses yet: nobody is mailed, whatever they ticked.
    assert set(Supporter.objects.values_list("status", flat=True)) == {"unsubscribed"}
    assert ConsentRecord.objects.count() == 2  # what they agreed to is kept meanwhile
    with django_capture_on_commit_callbacks(execute=True):
        for outcome in outcomes:
            signature_confirm(signature_id=outcome.signature_id, petition_id=petition.pk)
    status = dict(Supporter.objects.values_list("email", "status"))
    assert status == {
        "new@example.org": "subscribed",
        "left@example.org": "subscribed",
        "no-consent@example.org": "unsubscribed",
    }


def test_a_personal_link_confirming_a_consented_signature_subscribes(
    django_capture_on_commit_callbacks,
):
    petition = PetitionFactory(requires_confirmation=True)
    SignatureFactory(
        petition=petition,
        supporter__email="invited@example.org",
        supporter__status=Supporter.Status.UNSUBSCRIBED,
        confirmed_at=None,
        consented=True,
    )
    record(
        [request_for(petition, "invited@example.org", consent=False, confirmed=True)],
        django_capture_on_commit_callbacks,
    )
    assert Supporter.objects.get().status == Supporter.Status.SUBSCRIBED
