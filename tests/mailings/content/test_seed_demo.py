import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from campaigns.models import Campaign, Petition, Signature
from mailings.models import Mailing
from mailings.segments import segment_audience
from mailings.selectors import mailing_audience
from supporters.models import Segment, SegmentCondition, Supporter

pytestmark = pytest.mark.django_db


def snapshot():
    return [
        Model.objects.count()
        for Model in (
            Campaign,
            Petition,
            Signature,
            Mailing,
            Supporter,
            User,
            Segment,
            SegmentCondition,
        )
    ]


def test_seed_demo_builds_the_demo_and_a_second_run_changes_nothing():
    call_command("seed_demo", stdout=io.StringIO())
    first = snapshot()
    call_command("seed_demo", stdout=io.StringIO())
    assert snapshot() == first

    assert Supporter.objects.count() == 1000
    assert Petition.objects.filter(language="ru").exists()
    mailing = Mailing.objects.get()
    assert "{{ petition_url }}" in mailing.html_body
    assert mailing.audience_not_signed_petition == mailing.petition
    audience = mailing_audience(mailing)
    signed = Signature.objects.filter(petition=mailing.petition).values("supporter")
    assert 0 < audience.count() < 1000
    assert not audience.filter(pk__in=signed).exists()
    campaigner = User.objects.get(username="campaigner")
    assert campaigner.is_staff and campaigner.check_password("rally-demo")
    # The README's tour reads the development outbox as the demo login; the role does not.
    assert campaigner.has_perm("mailings.view_outboxmessage")


def test_the_demo_segment_is_the_volunteers_who_have_not_signed_the_second_petition():
    call_command("seed_demo", stdout=io.StringIO())
    segment = Segment.objects.get()
    refuseniks = Petition.objects.get(slug="otkazniki")
    expected = set(
        Supporter.objects.filter(tags__name="volunteers", status=Supporter.Status.SUBSCRIBED)
        .exclude(signatures__petition=refuseniks)
        .values_list("pk", flat=True)
    )
    assert expected
    assert set(segment_audience(segment).values_list("pk", flat=True)) == expected
