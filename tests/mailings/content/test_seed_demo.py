import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from campaigns.models import Campaign, Petition, Signature
from mailings.models import Mailing
from mailings.selectors import mailing_audience
from supporters.models import Supporter

pytestmark = pytest.mark.django_db


def snapshot():
    return [
        Model.objects.count() for Model in (Campaign, Petition, Signature, Mailing, Supporter, User)
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
