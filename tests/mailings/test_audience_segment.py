"""A mailing whose audience is a saved segment: the segment's members narrowed by the mailing's
own conditions, counted live in the form, and frozen by the snapshot a real worker takes.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from espfakes import FakePostmark
from mailings.models import Delivery, Mailing
from mailings.selectors import AudienceConditions, audience_counts, audience_for, mailing_audience
from mailings.sending import mailing_send
from supporters.models import Engagement, Segment, SegmentCondition, Supporter
from tests.factories import MailingFactory, SupporterFactory, TagFactory
from tests.processes import wait_for
from tests.sending_helpers import postmark_env, sent_count, wait_until_finished

Kind = SegmentCondition.Kind


def segment_of_tag(tag, name: str = "Volunteers") -> Segment:
    segment = Segment.objects.create(name=name)
    SegmentCondition.objects.create(segment=segment, kind=Kind.HAS_TAG, tag=tag)
    return segment


def emails(audience) -> set[str]:
    return set(audience.values_list("email", flat=True))


@pytest.fixture
def volunteers(db):
    """A segment (tagged "volunteer") with members in two countries, and people outside it."""
    tag = TagFactory(name="volunteer")
    for email, country in [("gb1@example.org", "GB"), ("gb2@example.org", "GB"),
                           ("de1@example.org", "DE")]:  # fmt: skip
        SupporterFactory(email=email, country=country).tags.add(tag)
    SupporterFactory(email="outsider-gb@example.org", country="GB")
    SupporterFactory(email="left@example.org", country="GB",
                     status=Supporter.Status.UNSUBSCRIBED).tags.add(tag)  # fmt: skip
    return segment_of_tag(tag)


def test_a_mailing_to_a_segment_goes_to_its_mailable_members(volunteers):
    mailing = MailingFactory(audience_segment=volunteers)

    assert emails(mailing_audience(mailing)) == {
        "gb1@example.org", "gb2@example.org", "de1@example.org",
    }  # fmt: skip


def test_the_mailings_own_conditions_narrow_the_segment(volunteers):
    mailing = MailingFactory(audience_segment=volunteers, audience_country="GB")

    assert emails(mailing_audience(mailing)) == {"gb1@example.org", "gb2@example.org"}
    conditions = AudienceConditions.of(mailing)
    assert conditions.segment_id == volunteers.pk
    assert audience_counts(conditions).count == 2


def test_a_segment_that_does_not_exist_is_one_nobody_is_in(volunteers):
    missing = AudienceConditions(segment_id=volunteers.pk + 1000)

    assert emails(audience_for(missing)) == set()
    assert audience_counts(missing).count == 0


def test_the_dormant_rule_applies_inside_a_segment(volunteers):
    dormant = Supporter.objects.get(email="de1@example.org")
    Engagement.objects.create(
        supporter=dormant,
        last_engaged_at=timezone.now() - timedelta(days=300),
        mailings_since_engaged=15,
    )
    appeal = MailingFactory(audience_segment=volunteers)
    repermission = MailingFactory(audience_segment=volunteers, purpose=Mailing.Purpose.REPERMISSION)

    assert emails(mailing_audience(appeal)) == {"gb1@example.org", "gb2@example.org"}
    assert emails(mailing_audience(repermission)) == {"de1@example.org"}


def test_the_live_count_reads_the_segment_and_the_dormant_fields(admin_client, volunteers):
    url = "/admin/mailings/mailing/audience.json"
    query = {"audience_segment": str(volunteers.pk), "audience_country": "GB"}

    answer = admin_client.get(url, query)

    assert answer.status_code == 200, answer.content
    assert answer.json()["count"] == 2
    assert admin_client.get(url, {"audience_segment": str(volunteers.pk)}).json()["count"] == 3
    assert admin_client.get(url, {"purpose": "repermission"}).json()["count"] == 0
    assert admin_client.get(url, {"include_dormant": "on"}).json()["count"] == 4


@pytest.mark.parametrize(
    ("parameter", "value", "says"),
    [
        ("audience_segment", "abc", "audience_segment: “abc” is not an id."),
        ("include_dormant", "maybe", "include_dormant: “maybe” is neither on nor off."),
        ("purpose", "spam", "purpose: “spam” is not a mailing's purpose"),
    ],
)
def test_the_live_count_refuses_a_value_that_is_no_condition(
    admin_client, volunteers, parameter, value, says
):
    answer = admin_client.get("/admin/mailings/mailing/audience.json", {parameter: value})

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(says)


def test_the_mailing_form_saves_a_segment_and_the_dormant_settings(admin_client, volunteers):
    mailing = MailingFactory()
    page = admin_client.get(f"/admin/mailings/mailing/{mailing.pk}/change/")
    html = page.content.decode()
    for field in ("audience_segment", "purpose", "include_dormant"):
        assert f'name="{field}"' in html, field

    post = {
        "campaign": mailing.campaign_id, "petition": mailing.petition_id, "name": mailing.name,
        "subject": mailing.subject, "preheader": "", "sender": page.context["adminform"].form[
            "sender"].value(), "html_body": mailing.html_body, "text_body": mailing.text_body,
        "audience_language": "", "audience_country": "GB",
        "audience_segment": volunteers.pk, "purpose": "repermission", "include_dormant": "on",
        "versions-TOTAL_FORMS": 0, "versions-INITIAL_FORMS": 0,
        "variants-TOTAL_FORMS": 0, "variants-INITIAL_FORMS": 0,
    }  # fmt: skip
    response = admin_client.post(f"/admin/mailings/mailing/{mailing.pk}/change/", post)

    assert response.status_code == 302, response.context["adminform"].form.errors
    mailing.refresh_from_db()
    assert (mailing.audience_segment, mailing.purpose, mailing.include_dormant) == (
        volunteers, Mailing.Purpose.REPERMISSION, True,
    )  # fmt: skip


def test_a_worker_sends_a_segment_narrowed_by_the_mailing_frozen_at_send_time(
    celery_worker_factory,
):
    """The segment's members who meet the mailing's own condition get it; who joins the
    segment after the snapshot is not sent, and who leaves it still is."""
    tag = TagFactory(name="marchers")
    members = [SupporterFactory(email=f"member{n}@example.org") for n in range(40)]
    in_russian = SupporterFactory(email="member-ru@example.org", language="ru")
    for member in [*members, in_russian]:
        member.tags.add(tag)
    latecomer = SupporterFactory(email="latecomer@example.org")
    mailing = MailingFactory(audience_segment=segment_of_tag(tag), audience_language="en")
    with FakePostmark() as esp:
        # Slow enough that the send is still going once the snapshot is taken.
        worker = celery_worker_factory(
            **postmark_env(esp, RALLY_SEND_BATCH_SIZE=5, RALLY_SEND_RATE_PER_SECOND=10)
        )
        mailing_send(mailing=mailing)

        def frozen_and_under_way():
            mailing.refresh_from_db()
            return mailing.audience_snapshot_at is not None and sent_count(mailing) > 0

        wait_for(frozen_and_under_way, timeout=60, message=worker.log)
        assert sent_count(mailing) < 40, "the send finished before the segment changed"
        latecomer.tags.add(tag)
        leaver = members[-1]
        leaver.tags.remove(tag)
        wait_until_finished(mailing, [worker])
        received = set(esp.counts())

    assert received == {member.email for member in members}
    assert leaver.email in received
    assert latecomer.email not in received and in_russian.email not in received
    assert not Delivery.objects.filter(mailing=mailing, supporter=latecomer).exists()
