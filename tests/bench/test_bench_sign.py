import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from bench.wrk import parse_wrk_output, summarise
from campaigns.models import Signature
from supporters.models import ConsentRecord, Supporter

WRK_SUMMARY = {
    "mode": "post",
    "requests": 10,
    "answered": 9,
    "ok": 8,
    "status_4xx": 0,
    "status_5xx": 1,
    "status_other": 0,
    "socket_errors": 0,
    "seconds": 2.0,
    "latency_us": {"p50": 12_000, "p95": 40_000, "p99": 90_500, "max": 120_000},
}


def test_the_summary_is_the_last_json_line_wrk_printed():
    stdout = (
        "Running 1m test @ http://127.0.0.1:8000/petitions/bench-sign/\n"
        "bench: thread finished\n"
        "Requests/sec:    512.00\n"
        f"{json.dumps(WRK_SUMMARY)}\n"
    )
    assert parse_wrk_output(stdout) == WRK_SUMMARY
    with pytest.raises(CommandError, match="no summary"):
        parse_wrk_output("unable to connect to 127.0.0.1:8000 Connection refused\n")


def test_an_acknowledged_signature_missing_from_the_table_is_lost():
    result = summarise(WRK_SUMMARY, None, signatures_in_db=7)
    assert (result["ok"], result["errors"], result["lost"]) == (8, 2, 1)
    assert result["errors_by_class"]["status_5xx"] == 1
    assert result["errors_by_class"]["no_answer"] == 1
    assert (result["p50_ms"], result["p99_ms"]) == (12.0, 90.5)
    assert result["req_per_s"] == 4.5  # 9 answers in 2 s
    # Stored although the answer was an error: not lost, but counted apart.
    stored_more = summarise(WRK_SUMMARY, None, signatures_in_db=9)
    assert (stored_more["lost"], stored_more["unacknowledged"]) == (0, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_bench_sign_stores_every_acknowledged_signature_and_cleans_up(server):
    """A tiny real run on PostgreSQL (the server and wrk); on SQLite, a refusal that says why."""
    stdout = io.StringIO()
    run = {
        "server": server,
        "requests": 200,
        "concurrency": 10,
        "supporters": 1000,
        "returning": 0.5,  # half of them sign as the supporters they already are
        "get_requests": 50,
    }
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("bench_sign", **run, stdout=stdout, stderr=io.StringIO())
        return
    call_command("bench_sign", **run, stdout=stdout, stderr=io.StringIO())

    result = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert result["requests"] == 200
    assert result["ok"] == 200 and result["errors"] == 0
    assert result["signatures_in_db"] == 200 and result["lost"] == 0
    assert result["get_ok"] == 50
    assert result["supporters_in_db"] == 1000
    assert result["server"] == server
    assert result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    # CPU per signature, read from /proc: the server did the signing. Ten backends, wrk and
    # Redis may each spend less than a tick (10 ms) on a short run: the meter is tested in
    # test_proc_cpu.py.
    assert result["web_cpu_ms_per_signature"] > 0
    assert result["postgres_cpu_ms_per_signature"] >= 0
    assert result["redis_cpu_ms_per_signature"] >= 0
    assert result["load_generator_cpu_ms_per_signature"] >= 0
    # What signing made is gone; the synthetic supporters stay, as they were, for the next run.
    assert Supporter.objects.count() == 1000
    assert not Signature.objects.exists() and not ConsentRecord.objects.exists()
    assert not Supporter.objects.exclude(postcode="").exists()
