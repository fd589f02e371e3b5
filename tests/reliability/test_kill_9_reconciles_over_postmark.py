"""kill -9 of a worker mid-send over the Postmark API, then a new worker and beat: nobody is
mailed twice, nobody is missed, and no delivery stays unknown.

Real parts: Celery worker processes on the test database and Redis, the fake Postmark in its
own process (anymail's real backend sends to it; its search answers the reconciler), and the
fake's own record of who received what as the judge. The search runs half a second behind the
API, as Postmark's does, and the reconciler waits longer than that before it asks. Each test
prints its figures as one JSON line (run with -s to see them).
"""

import json

import pytest

from espfakes import FakePostmark
from mailings.models import Delivery
from mailings.selectors import mailing_delivery_counts
from mailings.sending import mailing_send
from mailings.sending.reconcile.unknown import FOUND
from tests.factories import MailingFactory
from tests.processes import wait_for
from tests.sending_helpers import make_audience, postmark_env, sent_count, wait_until_settled

AUDIENCE = 10_000
Status = Delivery.Status


@pytest.mark.parametrize("kill_at", [0.3, 0.7], ids=["at_30_percent", "at_70_percent"])
def test_kill_9_of_the_worker_mid_send_ends_with_nobody_twice_nobody_missed_none_unknown(
    celery_worker_factory, kill_at
):
    emails = make_audience(AUDIENCE)
    mailing = MailingFactory()
    # Each batch request takes 200 ms, so the kill usually finds one in flight, which the fake
    # accepts after the worker is gone: unknown to Rally, received by the supporter.
    with FakePostmark(record_bodies=False, search_lag_ms=500, latency_ms=200) as esp:
        env = postmark_env(
            esp,
            RALLY_SEND_BATCH_SIZE=100,
            RALLY_SEND_LEASE_SECONDS=3,
            RALLY_SEND_STALL_SECONDS=2,
            RALLY_SWEEP_SECONDS=1,
            RALLY_RECONCILE_SECONDS=1,
            RALLY_RECONCILE_DELAY_SECONDS=3,
        )
        victim = celery_worker_factory(**env)
        mailing_send(mailing=mailing)
        # Killed while a batch is claimed: what it had in flight is what the crash leaves.
        wait_for(
            lambda: (
                sent_count(mailing) >= kill_at * AUDIENCE
                and Delivery.objects.filter(mailing=mailing, status=Status.CLAIMED).exists()
            ),
            timeout=180,
            message=victim.log,
        )
        victim.kill()  # the whole process group, pool children and all
        received_at_kill = sum(esp.counts().values())
        # What the dead pool left claimed: it goes unknown, then the reconciler settles it.
        left_claimed = Delivery.objects.filter(mailing=mailing, status=Status.CLAIMED).count()
        survivor = celery_worker_factory(**env, beat=True)

        wait_until_settled(mailing, survivor)
        counts = esp.counts()
        accepted = {m["message_id"]: m["recipient"] for m in esp.messages()}

    rows = Delivery.objects.filter(mailing=mailing)
    found_sent = rows.filter(error=FOUND).count()
    resent = rows.filter(resent_at__isnull=False).count()
    duplicates = {email: n for email, n in counts.items() if n > 1}
    missing = set(emails) - set(counts)
    figures = {
        "kill_at": kill_at,
        "received_at_kill": received_at_kill,
        "left_claimed": left_claimed,
        "unknown_before_reconciliation": found_sent + resent,
        "found_accepted": found_sent,
        "proven_never_accepted_and_resent": resent,
        "unknown_after_reconciliation": mailing_delivery_counts(mailing)["unknown"],
        "duplicates": len(duplicates),
        "missing": len(missing),
    }
    print(json.dumps(figures))
    # Whether the kill finds a batch in flight is timing (the pool may record it between the
    # check and the kill, and a COMMIT sent just before the kill still lands): the crash leaves
    # unknown at most what it left claimed, and the reconciler settles all of it.
    assert figures["unknown_before_reconciliation"] <= left_claimed, figures
    assert figures["unknown_after_reconciliation"] == 0, figures
    assert not duplicates, f"{len(duplicates)} received the mailing twice: {figures}"
    assert not missing, f"{len(missing)} never received it: {figures}"
    assert set(counts) == set(emails)
    ledger = mailing_delivery_counts(mailing)
    assert ledger["sent"] == AUDIENCE and ledger["unknown"] == 0, ledger
    # The ledger names, for each supporter, the very message the ESP accepted for them.
    for message_id, email in rows.values_list("esp_message_id", "supporter__email"):
        assert accepted[message_id] == email
