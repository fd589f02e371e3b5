"""Drive the fake Postmark's failures: injected faults, inactive recipients, a bad token."""

from __future__ import annotations

import pytest
import requests
from anymail.exceptions import AnymailRecipientsRefused, AnymailRequestsAPIError
from django.core.mail import get_connection

from espfakes import FakePostmark
from tests.espfakes.messages import make_message


def test_postmark_429_surfaces_with_retry_after(esp: FakePostmark) -> None:
    esp.configure(retry_after=7)
    esp.fail_next(1, status=429)

    with pytest.raises(AnymailRequestsAPIError) as caught:
        make_message("a@example.com").send()

    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert esp.counts() == {}
    make_message("a@example.com").send()
    assert esp.counts() == {"a@example.com": 1}


def test_postmark_fail_next_fails_exactly_n_requests_in_order(esp: FakePostmark) -> None:
    esp.fail_next(2, status=500)
    assert esp.fail_next(1, status=503) == 3

    outcomes = []
    with get_connection() as connection:
        for i in range(5):
            try:
                make_message(f"r{i}@example.com", connection=connection).send()
                outcomes.append("sent")
            except AnymailRequestsAPIError as error:
                outcomes.append(error.status_code)

    assert outcomes == [500, 500, 503, "sent", "sent"]
    stats = esp.stats()
    assert (stats["errors_5xx"], stats["accepted"], stats["pending_failures"]) == (3, 2, 0)


def test_postmark_random_faults_repeat_with_the_same_seed(esp: FakePostmark) -> None:
    def run() -> list[object]:
        outcomes: list[object] = []
        with get_connection() as connection:
            for i in range(30):
                try:
                    make_message(f"r{i}@example.com", connection=connection).send()
                    outcomes.append("sent")
                except AnymailRequestsAPIError as error:
                    outcomes.append(error.status_code)
        return outcomes

    esp.configure(rate_429=0.3, rate_500=0.2, seed=1234)
    first = run()
    esp.reset()  # restarts the seeded sequence
    second = run()

    assert first == second
    assert {429, "sent"} <= set(first)
    assert set(first) <= {429, 500, 503, "sent"}


def test_postmark_inactive_recipient_is_refused(esp: FakePostmark) -> None:
    esp.configure(reject_recipients=["Gone@Example.com"])

    with pytest.raises(AnymailRecipientsRefused):
        make_message("gone@example.com").send()

    message = make_message(["gone@example.com", "here@example.com"])
    message.send()
    assert message.anymail_status.recipients["gone@example.com"].status == "rejected"
    assert message.anymail_status.recipients["here@example.com"].status == "sent"
    assert esp.counts() == {"here@example.com": 1}
    stats = esp.stats()
    assert (stats["rejected"], stats["inactive_recipients"], stats["accepted"]) == (1, 2, 1)


def test_postmark_inactive_recipient_in_a_batch(esp: FakePostmark) -> None:
    esp.configure(reject_recipients=["gone@example.com"])
    message = make_message(["gone@example.com", "here@example.com"])
    message.merge_metadata = {"gone@example.com": {}, "here@example.com": {}}

    message.send()

    assert message.anymail_status.recipients["gone@example.com"].status == "rejected"
    assert message.anymail_status.recipients["here@example.com"].status == "sent"


def test_postmark_dropped_connection_raises_connection_error(esp: FakePostmark) -> None:
    esp.fail_next(1, status="drop")

    with get_connection() as connection:
        with pytest.raises(requests.ConnectionError) as caught:
            make_message("a@example.com", connection=connection).send()
        assert isinstance(caught.value, AnymailRequestsAPIError)
        make_message("a@example.com", connection=connection).send()  # reconnects

    stats = esp.stats()
    assert (stats["dropped"], stats["accepted"], stats["connections"]) == (1, 1, 2)


def test_postmark_lost_response_after_accept_shows_up_as_duplicate(esp: FakePostmark) -> None:
    esp.fail_next(1, status="drop_after_accept")

    with pytest.raises(requests.ConnectionError):
        make_message("a@example.com").send()
    make_message("a@example.com").send()  # the caller's retry

    assert esp.duplicates() == {"a@example.com": 2}


def test_postmark_latency_outlasting_the_client_timeout(esp: FakePostmark) -> None:
    esp.configure(latency_ms=300)

    with get_connection(timeout=0.05) as connection, pytest.raises(requests.Timeout):
        make_message("slow@example.com", connection=connection).send()

    # Like a real ESP, the fake still accepts what it received after the client gave up.
    esp.wait_for_accepted(1, timeout=5)
    assert esp.counts() == {"slow@example.com": 1}


def test_postmark_bad_token_is_401(esp: FakePostmark) -> None:
    with (
        get_connection(server_token="wrong") as connection,
        pytest.raises(AnymailRequestsAPIError) as caught,
    ):
        make_message("a@example.com", connection=connection).send()

    assert caught.value.status_code == 401
    assert caught.value.response.json()["ErrorCode"] == 10
    assert esp.stats()["unauthorized"] == 1
