import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command

from campaigns.models import Campaign
from mailings.models import Delivery, Mailing
from supporters.models import Supporter

CPU_GROUPS = {"worker_main", "worker_children", "esp", "postgres", "redis", "driver"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("esp", ["smtp", "postmark"])
def test_bench_send_baseline_reaches_everyone_once_in_both_loops_and_cleans_up(esp):
    """A small real run: Rally's workers and the naive loop before and after, each exactly once.

    Each loop's counts are its own: the sink forgets what the loop before it received, so a
    recipient counted twice would be a duplicate sent, not a leftover.
    """
    stdout = io.StringIO()
    redis_db = int(settings.REDIS_URL.rsplit("/", 1)[1])
    call_command(
        "bench_send", recipients=300, esp=esp, baseline=True, redis_db=redis_db,
        concurrency=2, stdout=stdout, stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert result["delivered"] == result["ledger_sent"] == 300
    assert result["duplicates"] == result["missing"] == 0
    assert result["naive_duplicates"] == result["naive_missing"] == 0
    assert set(result["cpu_ms_per_message"]) == CPU_GROUPS
    assert set(result["naive_cpu_ms_per_message"]) == {"esp", "postgres", "redis", "driver"}
    # The pool's children did the sending; the naive loop's driver did its own. The fake ESP
    # may spend less than a tick (10 ms) on 300 messages: the meter is tested in test_proc_cpu.
    assert result["cpu_ms_per_message"]["worker_children"] > 0
    assert result["naive_cpu_ms_per_message"]["driver"] > 0
    assert all(ms >= 0 for ms in result["cpu_ms_per_message"].values())
    assert all(ms >= 0 for ms in result["naive_cpu_ms_per_message"].values())
    assert result["esp_cpu_share_of_worker"] >= 0
    assert result["naive_emails_per_s_before"] > 0 and result["naive_emails_per_s_after"] > 0
    mean = (result["naive_emails_per_s_before"] + result["naive_emails_per_s_after"]) / 2
    assert result["naive_emails_per_s"] == pytest.approx(mean, abs=0.1)
    assert result["ratio_to_naive"] == pytest.approx(
        result["emails_per_s"] / result["naive_emails_per_s"], rel=0.01
    )
    # What the run made is gone.
    for model in (Delivery, Mailing, Supporter, Campaign):
        assert not model.objects.exists(), model
