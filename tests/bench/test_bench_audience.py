import io
import json

import pytest
from django.core.management import call_command

from campaigns.models import Petition, Signature
from mailings.models import Mailing
from mailings.selectors import mailing_audience_counts
from supporters.models import Supporter, Tag
from tests.factories import SupporterFactory

SYNTHETIC = 300


def bench_audience(**options) -> dict:
    stdout = io.StringIO()
    call_command(
        "bench_audience", supporters=SYNTHETIC, repeat=3, stdout=stdout, stderr=io.StringIO(),
        **options,
    )  # fmt: skip
    return json.loads(stdout.getvalue().strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("audience", ["not-signed", "tag", "everyone"])
def test_bench_audience_reports_what_the_selector_counts(audience):
    """A tiny real run, on either database; --keep leaves the mailing to count again."""
    SupporterFactory(language="ru")  # not synthetic, in every audience all the same
    SupporterFactory(language="ru", status=Supporter.Status.UNSUBSCRIBED)

    result = bench_audience(audience=audience, keep=True)

    assert {"supporters", "count", "by_language", "p50_ms", "p95_ms", "database"} <= set(result)
    assert result["supporters"] == SYNTHETIC + 2
    assert result["audience"] == audience and result["repeat"] == 3
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["max_ms"]
    counts = mailing_audience_counts(Mailing.objects.get(pk=result["mailing_id"]))
    assert (result["count"], result["by_language"]) == (counts.count, counts.by_language)
    signed = Signature.objects.filter(petition_id=result["petition_id"]).count()
    tagged = Supporter.objects.filter(tags__pk=result["tag_id"]).count()
    synthetic_ids = Supporter.objects.filter(source="bench").values_list("pk", flat=True)
    assert signed == sum(1 for pk in synthetic_ids if pk % 10 == 0)
    assert tagged == sum(1 for pk in synthetic_ids if pk % 7 == 0)
    tagged_and_signed = sum(1 for pk in synthetic_ids if pk % 70 == 0)
    expected = {
        "everyone": (SYNTHETIC + 1, 1),
        "not-signed": (SYNTHETIC + 1 - signed, 1),
        "tag": (tagged - tagged_and_signed, 0),  # the untagged Russian speaker is not in it
    }
    assert (result["count"], result["by_language"]["ru"]) == expected[audience]


@pytest.mark.django_db(transaction=True)
def test_bench_audience_keeps_the_synthetic_supporters_and_nothing_else():
    bench_audience()
    bench_audience()  # a second run finds the supporters and makes its own fixtures again

    assert Supporter.objects.count() == SYNTHETIC
    assert not Signature.objects.exists()
    assert not Supporter.tags.through.objects.exists()
    assert not Mailing.objects.exists()
    assert not Petition.objects.exists() and not Tag.objects.exists()
