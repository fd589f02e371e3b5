import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from campaigns.models import Campaign
from mailings.models import Delivery, Mailing, TrackingEvent
from supporters.models import Supporter


@pytest.mark.django_db(transaction=True)
def test_bench_webhooks_stores_each_event_once_processes_all_and_cleans_up():
    """A tiny real run on PostgreSQL (granian, wrk, a worker); on SQLite, a refusal."""
    stdout = io.StringIO()
    run = {"events": 300, "concurrency": 10, "duplicates": 0.1, "worker_concurrency": 1}
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("bench_webhooks", **run, stdout=stdout, stderr=io.StringIO())
        return
    call_command("bench_webhooks", **run, stdout=stdout, stderr=io.StringIO())

    result = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert {"events", "accepted", "processed", "duplicates_ignored", "req_per_s", "p99_ms"} <= set(
        result
    )
    assert result["events"] == 300 and result["accepted"] == 300 and result["errors"] == 0
    # Every tenth post repeats its thread's last event: stored once, queued once, ignored after.
    assert result["duplicates_sent"] == result["duplicates_ignored"] == 30
    assert result["stored"] == result["queued"] == result["processed"] == 270
    # Events are queued in batches: never more tasks than events.
    assert 1 <= result["tasks_queued"] <= result["queued"]
    assert result["req_per_s"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0
    assert result["server"] == "granian" and result["database"] == "postgresql"
    # What the run made is gone.
    for model in (TrackingEvent, Delivery, Mailing, Supporter, Campaign):
        assert not model.objects.exists(), model
