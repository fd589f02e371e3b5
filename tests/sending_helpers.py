"""What the end-to-end send tests share: a worker's environment for each fake ESP, an audience,
waiting for a mailing, and the checks that every recipient got it exactly once.

Used by tests/mailings/sending/ (the queue's promises) and tests/reliability/ (the same promises
under injected faults).
"""

import json

from espfakes import FakePostmark, FakeSMTP
from mailings.models import Delivery, Mailing
from mailings.selectors import mailing_delivery_counts
from supporters.models import Supporter
from tests.processes import wait_for


def postmark_env(esp: FakePostmark, **settings) -> dict[str, str]:
    """Return the environment that sends a worker's mail through anymail's Postmark backend."""
    return {
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL": json.dumps(
            {"POSTMARK_SERVER_TOKEN": esp.server_token, "POSTMARK_API_URL": esp.api_url}
        ),
        **{name: str(value) for name, value in settings.items()},
    }


def smtp_env(esp: FakeSMTP, **settings) -> dict[str, str]:
    """Return the environment that sends a worker's mail through Django's SMTP backend."""
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": esp.host,
        "EMAIL_PORT": str(esp.port),
        **{name: str(value) for name, value in settings.items()},
    }


def make_audience(count: int, prefix: str = "reader") -> list[str]:
    """Create `count` subscribed supporters; return their addresses."""
    emails = [f"{prefix}{n}@example.org" for n in range(count)]
    Supporter.objects.bulk_create(
        [Supporter(email=email, first_name=f"R{n}") for n, email in enumerate(emails)]
    )
    return emails


def sent_count(mailing: Mailing) -> int:
    return Delivery.objects.filter(mailing=mailing, status=Delivery.Status.SENT).count()


def wait_until_finished(mailing: Mailing, workers, timeout: float = 120) -> None:
    """Wait until the mailing is sent or paused; on time-out, show the ledger and a worker log."""

    def finished():
        mailing.refresh_from_db()
        return mailing.status in (Mailing.Status.SENT, Mailing.Status.PAUSED)

    wait_for(
        finished,
        timeout=timeout,
        message=lambda: (
            f"mailing {mailing.status}, ledger {mailing_delivery_counts(mailing)}; last worker "
            f"log:\n{workers[-1].log()[-4000:]}"
        ),
    )


def wait_until_settled(mailing: Mailing, worker) -> None:
    """Wait until the mailing is sent and nothing in its ledger is open, unknown included."""

    def settled():
        mailing.refresh_from_db()
        ledger = mailing_delivery_counts(mailing)
        open_rows = ledger["unknown"] + ledger["pending"] + ledger["claimed"]
        return mailing.status == Mailing.Status.SENT and not open_rows

    wait_for(
        settled,
        timeout=300,
        message=lambda: (
            f"mailing {mailing.status}, ledger {mailing_delivery_counts(mailing)}; worker "
            f"log:\n{worker.log()[-4000:]}"
        ),
    )


def wait_until_no_batch_is_claimed(mailing: Mailing, worker) -> None:
    wait_for(
        lambda: not Delivery.objects.filter(mailing=mailing, status="claimed").exists(),
        timeout=60,
        message=lambda: f"a batch is still claimed; worker log:\n{worker.log()[-3000:]}",
    )


def assert_each_received_exactly_once(esp, emails: list[str]) -> None:
    """Check the fake ESP's own record: every address in `emails` got one message, no one else."""
    assert_counts_are_exactly_once(esp.counts(), emails)


def assert_counts_are_exactly_once(counts: dict[str, int], emails: list[str]) -> None:
    """Check messages counted per recipient: one for every address in `emails`, none for others."""
    duplicates = {email: n for email, n in counts.items() if n > 1}
    missing = set(emails) - set(counts)
    assert not duplicates, f"{len(duplicates)} received more than one copy"
    assert not missing, f"{len(missing)} received nothing"
    assert set(counts) == set(emails)


def assert_the_ledger_says_each_was_sent(mailing: Mailing, emails: list[str]) -> None:
    """Check that the ledger agrees with the ESP: each of `emails` sent, nothing else left.

    No delivery stays pending, claimed, unknown or failed: the ledger tells the same story as
    the ESP's record, which assert_each_received_exactly_once checks.
    """
    ledger = mailing_delivery_counts(mailing)
    assert ledger == {**dict.fromkeys(Delivery.Status.values, 0), "sent": len(emails)}, ledger
    sent = Delivery.objects.filter(mailing=mailing, status=Delivery.Status.SENT)
    assert set(sent.values_list("supporter__email", flat=True)) == set(emails)
