import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from api.models import ApiAuditEntry, ApiToken
from supporters.models import Engagement, Segment, Supporter, Tag

SYNTHETIC = 400
RUN = {
    "supporters": SYNTHETIC,
    "requests": 40,
    "signups": 60,
    "concurrency": 5,
    "get_concurrency": 2,
    "repeat": 3,
}


@pytest.mark.django_db(transaction=True)
def test_bench_api_reports_each_phase_and_leaves_only_the_synthetic_supporters():
    """A tiny real run on PostgreSQL (granian, wrk); on SQLite, a refusal."""
    stdout = io.StringIO()
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("bench_api", **RUN, stdout=stdout, stderr=io.StringIO())
        return
    call_command("bench_api", **RUN, stdout=stdout, stderr=io.StringIO())

    result = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert {
        "people_page_p95_ms",
        "people_page_max_size_p95_ms",
        "signup_req_per_s",
        "segment_count_p95_ms",
        "yardstick_entry_p95_ms",
        "ratio_people_page_p95_to_entry",
        "goals_met",
    } <= set(result)
    assert result["errors"] == 0 and result["signup_ok"] == 60
    # The synthetic supporters, then the 60 signed up during the run.
    assert result["supporters"] == SYNTHETIC + 60
    # A share of 0.6 of them has an engagement row (by a hash of the id: about that share).
    assert 0.4 * SYNTHETIC < result["engaged"] < 0.8 * SYNTHETIC
    assert result["people_pages"] == -(-SYNTHETIC // 25)
    segments = result["segments"]
    assert set(segments) == {"dormant", "lapsing"}
    assert 0 < segments["dormant"]["count"] + segments["lapsing"]["count"] <= SYNTHETIC
    assert result["people_page_p95_ms"] >= result["people_page_p50_ms"] > 0
    assert result["signup_req_per_s"] > 0 and result["yardstick_entry_req_per_s"] > 0
    assert set(result["goals_met"]) == {
        "people_page_p95",
        "people_page_max_size_p95",
        "signup_req_per_s",
        "segment_count_p95",
    }
    assert result["database"] == "postgresql"
    # What the run made is gone; the synthetic supporters stay for the next run.
    assert Supporter.objects.count() == SYNTHETIC
    for model in (Engagement, Segment, Tag, ApiToken, ApiAuditEntry):
        assert not model.objects.exists(), model
