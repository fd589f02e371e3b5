"""Search the fake Postmark's sent messages as Postmark's outbound message search answers.

Messages go in through anymail's real Postmark backend; searches go out as Postmark documents
them: GET /messages/outbound with count, offset and filters, the server token in a header.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from anymail.message import AnymailMessage

from espfakes import FakePostmark
from tests.espfakes.messages import SENDER

EASTERN = ZoneInfo("America/New_York")


def send(to: str, **metadata: str) -> str:
    message = AnymailMessage("Appeal", "Plain body", SENDER, [to], metadata=metadata)
    message.send()
    return message.anymail_status.message_id


def search(esp: FakePostmark, token: str | None = None, **params) -> requests.Response:
    return requests.get(
        f"{esp.api_url}messages/outbound",
        params=params,
        headers={
            "Accept": "application/json",
            "X-Postmark-Server-Token": token or esp.server_token,
        },
        timeout=10,
    )


def test_search_by_one_metadata_field_finds_exactly_the_messages_that_carry_it(esp):
    ids = {n: send(f"r{n}@example.org", delivery_id=str(n), mailing_id="7") for n in range(5)}
    send("other@example.org", delivery_id="99", mailing_id="8")

    answer = search(esp, count=50, offset=0, metadata_delivery_id="3")
    assert answer.status_code == 200
    body = answer.json()
    assert body["TotalCount"] == 1
    (found,) = body["Messages"]
    assert found["MessageID"] == ids[3]
    assert found["Recipients"] == ["r3@example.org"]
    assert found["Metadata"] == {"delivery_id": "3", "mailing_id": "7"}
    assert found["Status"] == "Sent"
    assert found["To"] == [{"Email": "r3@example.org", "Name": None}]
    # ReceivedAt is in US Eastern time, with its offset, as Postmark writes it.
    received = datetime.fromisoformat(found["ReceivedAt"])
    assert received.utcoffset() == received.astimezone(EASTERN).utcoffset()
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=1)

    by_mailing = search(esp, count=50, offset=0, metadata_mailing_id="7").json()
    assert by_mailing["TotalCount"] == 5
    assert {m["MessageID"] for m in by_mailing["Messages"]} == set(ids.values())


def test_search_pages_with_count_and_offset_most_recent_first(esp):
    ids = [send(f"r{n}@example.org", mailing_id="7") for n in range(7)]

    pages = [
        search(esp, count=3, offset=offset, metadata_mailing_id="7").json() for offset in (0, 3, 6)
    ]
    assert [page["TotalCount"] for page in pages] == [7, 7, 7]
    listed = [m["MessageID"] for page in pages for m in page["Messages"]]
    assert listed == list(reversed(ids))


def test_search_filters_by_recipient_and_by_eastern_time_window(esp):
    send("ada@example.org", mailing_id="1")
    send("bob@example.org", mailing_id="1")
    now_eastern = datetime.now(EASTERN).replace(tzinfo=None)
    hour_ago = (now_eastern - timedelta(hours=1)).isoformat(timespec="seconds")
    in_an_hour = (now_eastern + timedelta(hours=1)).isoformat(timespec="seconds")

    assert search(esp, count=10, offset=0, recipient="ADA@example.org").json()["TotalCount"] == 1
    around_now = search(esp, count=10, offset=0, fromdate=hour_ago, todate=in_an_hour)
    assert around_now.json()["TotalCount"] == 2
    before = search(esp, count=10, offset=0, todate=hour_ago).json()
    assert before == {"TotalCount": 0, "Messages": []}
    after = search(esp, count=10, offset=0, fromdate=in_an_hour).json()
    assert after["TotalCount"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"offset": 0},  # count is required
        {"count": 10},  # offset is required
        {"count": 0, "offset": 0},
        {"count": 501, "offset": 0},  # at most 500 a page
        {"count": "ten", "offset": 0},
        {"count": 500, "offset": 9_600},  # count + offset may not pass 10,000
        {"count": 10, "offset": -1},
        {"count": 10, "offset": 0, "metadata_a": "1", "metadata_b": "2"},  # one field at a time
        {"count": 10, "offset": 0, "todate": "yesterday"},
        {"count": 10, "offset": 0, "status": "lost"},
    ],
)
def test_a_search_postmark_would_refuse_is_a_422_with_error_code_700(esp, params):
    answer = search(esp, **params)
    assert answer.status_code == 422
    assert answer.json()["ErrorCode"] == 700
    assert "Messages query exception" in answer.json()["Message"]


def test_a_search_without_the_right_server_token_is_a_401(esp):
    answer = search(esp, token="wrong", count=10, offset=0)
    assert answer.status_code == 401
    assert answer.json()["ErrorCode"] == 10


def test_a_message_is_searchable_only_once_the_search_lag_has_passed(esp):
    esp.configure(search_lag_ms=400)
    send("late@example.org", delivery_id="1")
    assert search(esp, count=1, offset=0, metadata_delivery_id="1").json()["TotalCount"] == 0
    esp.wait_until(
        lambda fake: search(fake, count=1, offset=0, metadata_delivery_id="1").json()["TotalCount"],
        timeout=5,
    )


def test_injected_faults_reach_searches_too(esp):
    esp.fail_next(1, status=503)
    assert search(esp, count=1, offset=0).status_code == 503
    assert search(esp, count=1, offset=0).status_code == 200
    assert esp.stats()["searches"] == 1


def test_a_reset_forgets_what_the_search_found(esp):
    send("gone@example.org", delivery_id="1")
    assert search(esp, count=1, offset=0).json()["TotalCount"] == 1
    esp.reset()
    send("new@example.org", delivery_id="2")
    assert [m["Recipients"] for m in search(esp, count=10, offset=0).json()["Messages"]] == [
        ["new@example.org"]
    ]
