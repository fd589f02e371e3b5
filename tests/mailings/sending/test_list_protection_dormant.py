"""Dormant supporters and a mailing's audience: left out of an appeal unless it opts in, the
whole audience of a re-permission mailing; counted the same way in the form, on the
confirmation page and in the snapshot a real worker takes.
"""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.selectors import (
    AudienceConditions,
    audience_counts,
    audience_dormant_left_out_count,
    audience_for,
    mailing_audience,
)
from mailings.sending import mailing_send
from supporters.models import Engagement
from tests.factories import MailingFactory, SupporterFactory
from tests.mailing_pages import confirmation_fields
from tests.sending_helpers import postmark_env, wait_until_finished

Purpose = Mailing.Purpose


def engaged(supporter, *, days_ago: float, mailings_since: int):
    """Give `supporter` an engagement row: last engaged `days_ago`, mailed since that often."""
    Engagement.objects.create(
        supporter=supporter,
        last_engaged_at=timezone.now() - timedelta(days=days_ago),
        last_mailed_at=timezone.now() - timedelta(days=1),
        mailings_since_engaged=mailings_since,
    )
    return supporter


@pytest.fixture
def tiers(db):
    """Supporters in each tier (settings: dormant after 180 days and 10 mailings), by name."""
    return {
        # Never mailed, joined now: active.
        "new": SupporterFactory(email="new@example.org"),
        "active": engaged(
            SupporterFactory(email="active@example.org"), days_ago=10, mailings_since=2
        ),
        "lapsing": engaged(
            SupporterFactory(email="lapsing@example.org"), days_ago=120, mailings_since=12
        ),
        # Silent long enough, but not mailed often enough since (even after the worker test's
        # sends, which add to it): lapsing, not dormant.
        "quiet": engaged(
            SupporterFactory(email="quiet@example.org"), days_ago=400, mailings_since=5
        ),
        "dormant": engaged(
            SupporterFactory(email="dormant@example.org"), days_ago=200, mailings_since=10
        ),
        "dormant_ru": engaged(
            SupporterFactory(email="dormant-ru@example.org", language="ru"),
            days_ago=365,
            mailings_since=30,
        ),
    }


def emails(audience) -> set[str]:
    return set(audience.values_list("email", flat=True))


NOT_DORMANT = {"new@example.org", "active@example.org", "lapsing@example.org", "quiet@example.org"}
DORMANT = {"dormant@example.org", "dormant-ru@example.org"}


def test_an_appeal_leaves_the_dormant_out(tiers):
    conditions = AudienceConditions()

    assert emails(audience_for(conditions)) == NOT_DORMANT
    assert audience_counts(conditions).count == 4
    assert audience_dormant_left_out_count(conditions) == 2


def test_an_appeal_that_opts_in_goes_to_the_dormant_too(tiers):
    conditions = AudienceConditions(include_dormant=True)

    assert emails(audience_for(conditions)) == NOT_DORMANT | DORMANT
    assert audience_counts(conditions).count == 6
    assert audience_dormant_left_out_count(conditions) == 0


@override_settings(RALLY_EXCLUDE_DORMANT=False)
def test_with_the_organisation_default_off_the_dormant_are_mailed_as_anyone(tiers):
    assert emails(audience_for(AudienceConditions())) == NOT_DORMANT | DORMANT
    assert audience_dormant_left_out_count(AudienceConditions()) == 0


def test_a_repermission_mailing_goes_to_the_dormant_alone_narrowed_by_its_conditions(tiers):
    repermission = AudienceConditions(purpose=Purpose.REPERMISSION)
    in_russian = AudienceConditions(purpose=Purpose.REPERMISSION, language="ru")

    assert emails(audience_for(repermission)) == DORMANT
    assert emails(audience_for(in_russian)) == {"dormant-ru@example.org"}
    assert audience_counts(in_russian).by_language == {"en": 0, "ru": 1}
    # Opting in changes nothing for a mailing that goes to the dormant anyway.
    assert emails(audience_for(AudienceConditions(purpose=Purpose.REPERMISSION,
                                                  include_dormant=True))) == DORMANT  # fmt: skip


def test_the_dormant_left_out_are_counted_within_the_audiences_own_conditions(tiers):
    in_russian = AudienceConditions(language="ru")

    assert audience_counts(in_russian).count == 0
    assert audience_dormant_left_out_count(in_russian) == 1


def test_a_saved_mailing_reads_its_own_dormant_settings(tiers):
    appeal = MailingFactory()
    opted_in = MailingFactory(include_dormant=True)
    repermission = MailingFactory(purpose=Purpose.REPERMISSION)

    assert emails(mailing_audience(appeal)) == NOT_DORMANT
    assert emails(mailing_audience(opted_in)) == NOT_DORMANT | DORMANT
    assert emails(mailing_audience(repermission)) == DORMANT


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=2, RALLY_FREQUENCY_CAP_PER_WEEK=5)
def test_the_confirmation_page_states_the_defaults_and_counts_the_dormant_left_out(
    admin_client, tiers
):
    appeal = MailingFactory()

    page = admin_client.get(f"/admin/mailings/mailing/{appeal.pk}/send/")

    assert page.status_code == 200
    html = page.content.decode()
    assert '<strong class="recipient-count">4</strong>' in html
    assert '<strong id="dormant-left-out">2</strong> dormant supporters who match' in html
    assert "At most 2 bulk mailings a day and 5 a week per supporter" in html


@override_settings(RALLY_FREQUENCY_CAP_PER_DAY=0, RALLY_FREQUENCY_CAP_PER_WEEK=0)
@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"include_dormant": True}, "Included: this mailing opts in to them"),
        ({"purpose": Purpose.REPERMISSION}, "goes to dormant supporters only"),
    ],
)
def test_the_confirmation_page_says_when_a_mailing_goes_to_the_dormant(
    admin_client, tiers, fields, says
):
    mailing = MailingFactory(**fields)

    html = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/schedule/").content.decode()

    assert says in html
    assert "Off: supporters get every mailing they are in" in html


def test_the_count_confirmed_is_the_count_sent_to(admin_client, tiers):
    """The send page's count leaves the dormant out, as the snapshot does: the service takes
    the confirmation, since the audience is still the size the page showed."""
    appeal = MailingFactory()
    url = f"/admin/mailings/mailing/{appeal.pk}/send/"

    response = admin_client.post(url, confirmation_fields(admin_client, url))

    assert response.status_code == 302
    appeal.refresh_from_db()
    assert appeal.status == Mailing.Status.SENDING


def received_by_mailing(esp) -> dict[int, set[str]]:
    got: dict[int, set[str]] = {}
    for message in esp.messages():
        got.setdefault(int(message["metadata"]["mailing_id"]), set()).add(message["recipient"])
    return got


def test_a_worker_snapshots_the_dormant_out_of_an_appeal_into_one_that_opts_in_and_alone_into_a_repermission_mailing(  # noqa: E501
    celery_worker_factory, tiers
):
    appeal = MailingFactory()
    opted_in = MailingFactory(include_dormant=True)
    repermission = MailingFactory(purpose=Purpose.REPERMISSION)
    with FakePostmark() as esp:
        worker = celery_worker_factory(**postmark_env(esp))
        for mailing in (appeal, opted_in, repermission):
            mailing_send(mailing=mailing)
            wait_until_finished(mailing, [worker])
            assert mailing.status == Mailing.Status.SENT
        got = received_by_mailing(esp)

    assert got == {
        appeal.pk: NOT_DORMANT,
        opted_in.pk: NOT_DORMANT | DORMANT,
        repermission.pk: DORMANT,
    }
    # The snapshot itself left them out: no ledger row says a dormant supporter was skipped.
    in_appeal = Delivery.objects.filter(mailing=appeal)
    assert set(in_appeal.values_list("supporter__email", flat=True)) == NOT_DORMANT
