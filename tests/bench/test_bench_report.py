import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from campaigns.models import Campaign, Signature
from mailings.models import (
    Delivery,
    DeliveryCount,
    LinkClick,
    Mailing,
    ReportHour,
    TrackingEvent,
)
from supporters.models import Supporter


@pytest.mark.django_db(transaction=True)
def test_bench_report_times_report_json_and_the_counters_cost_then_cleans_up(settings):
    """A tiny real run on PostgreSQL (granian, a worker); on SQLite, a refusal."""
    stdout = io.StringIO()
    run = {
        "deliveries": 2000, "events": 400, "repeat": 5, "ledger_repeat": 1,
        "webhook_events": 200, "webhook_rounds": 1, "worker_concurrency": 1,
        "redis_db": int(settings.REDIS_URL.rsplit("/", 1)[1]),
    }  # fmt: skip
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("bench_report", **run, stdout=stdout, stderr=io.StringIO())
        return
    call_command("bench_report", **run, stdout=stdout, stderr=io.StringIO())

    result = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert result["deliveries"] == 2000 and result["events"] == 400
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["max_ms"]
    assert result["ledger_scan_ms"] > 0 and result["ratio_to_ledger_scan"] > 0
    assert result["agrees_with_ledger"] is True
    # The poll reads the counters by status, not the ledger.
    assert 0 < result["progress_p50_ms"] <= result["progress_p95_ms"]
    assert 0 < result["progress_reads_p50_ms"] <= result["progress_reads_p95_ms"]
    assert result["progress_ledger_count_ms"] > 0
    assert result["progress_ratio_to_ledger_count"] > 0
    assert 1 <= result["delivery_count_rows"] <= 64
    # Thirty days of hours at most (sending's first hours and each event's), and the mailbox
    # domains: the first 400 deliveries reach every named one and 60 small ones.
    assert 0 < result["hour_rows"] <= 30 * 24 + 3
    assert result["breakdown_rows"] > 60
    assert result["series_points"] > 72
    assert len(result["webhook_seconds_without_buckets"]) == 1
    assert len(result["webhook_seconds_with_buckets"]) == 1
    assert isinstance(result["bucket_overhead"], float)
    assert result["database"] == "postgresql"
    for model in (TrackingEvent, Delivery, LinkClick, Signature, Mailing, Supporter, Campaign):
        assert not model.objects.exists(), model
    assert not ReportHour.objects.exists()
    assert not DeliveryCount.objects.exists()
