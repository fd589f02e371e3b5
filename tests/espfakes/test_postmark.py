"""Drive the fake Postmark with anymail's real Postmark backend: what it records and answers."""

from __future__ import annotations

import json
import socket

import pytest
import requests
from anymail.exceptions import AnymailRequestsAPIError
from django.core.mail import get_connection
from django.test import override_settings

from espfakes import FakePostmark
from tests.espfakes.messages import POSTMARK_BACKEND, SENDER, make_message


def test_postmark_records_message_with_headers_and_metadata(esp: FakePostmark) -> None:
    message = make_message(
        "Ada Lovelace <Ada@Example.com>", "Sign the petition", headers={"X-Campaign": "c-42"}
    )
    message.metadata = {"send_id": "s-1", "mailing": "m-7"}
    message.tags = ["appeal"]

    assert message.send() == 1

    [recorded] = esp.messages()
    assert recorded["message_id"] == message.anymail_status.message_id
    assert message.anymail_status.status == {"sent"}
    assert recorded["recipient"] == "ada@example.com"
    assert recorded["to"] == ["ada@example.com"]
    assert recorded["from"] == SENDER
    assert recorded["subject"] == "Sign the petition"
    assert recorded["text"] == "Plain body"
    assert recorded["html"] == "<p>HTML body</p>"
    assert recorded["headers"] == {"X-Campaign": ["c-42"]}
    assert recorded["metadata"] == {"send_id": "s-1", "mailing": "m-7"}
    assert recorded["tag"] == "appeal"
    assert recorded["accepted_at"] > 0
    assert esp.stats()["accepted"] == 1


def test_postmark_counts_per_recipient_find_duplicates_and_missing(esp: FakePostmark) -> None:
    for to in ["a@example.com", "b@example.com", "A@example.com"]:
        make_message(to).send()
    make_message(["c@example.com"], cc=["d@example.com"], bcc=["e@example.com"]).send()

    assert esp.counts() == {
        "a@example.com": 2,
        "b@example.com": 1,
        "c@example.com": 1,
        "d@example.com": 1,
        "e@example.com": 1,
    }
    assert esp.duplicates() == {"a@example.com": 2}
    assert esp.missing(["a@example.com", "z@example.com"]) == ["z@example.com"]


def test_postmark_reuses_one_keep_alive_connection(esp: FakePostmark) -> None:
    connection = get_connection()
    with connection:
        sent = connection.send_messages([make_message(f"r{i}@example.com") for i in range(40)])

    assert sent == 40
    stats = esp.stats()
    assert (stats["requests"], stats["accepted"], stats["connections"]) == (40, 40, 1)


def test_postmark_batch_send_gives_each_recipient_its_own_message(esp: FakePostmark) -> None:
    message = make_message(["x@example.com", "y@example.com"])
    message.merge_metadata = {"x@example.com": {"n": 1}, "y@example.com": {"n": 2}}

    message.send()

    recorded = {m["recipient"]: m for m in esp.messages()}
    assert recorded["x@example.com"]["metadata"] == {"n": 1}
    assert recorded["y@example.com"]["metadata"] == {"n": 2}
    statuses = message.anymail_status.recipients
    assert statuses["x@example.com"].message_id == recorded["x@example.com"]["message_id"]
    assert statuses["y@example.com"].message_id == recorded["y@example.com"]["message_id"]
    assert esp.stats()["requests"] == 1


def test_postmark_invalid_request_shapes(esp: FakePostmark) -> None:
    headers = {"X-Postmark-Server-Token": esp.server_token, "Accept": "application/json"}
    with requests.Session() as session:
        bad_to = session.post(
            f"{esp.api_url}email",
            json={"From": "a@example.com", "To": "nobody", "TextBody": "x"},
            headers=headers,
        )
        bad_json = session.post(f"{esp.api_url}email", data="{not json", headers=headers)
        no_body = session.post(
            f"{esp.api_url}email", json={"From": "a@example.com", "To": "b@x.org"}, headers=headers
        )

    assert (bad_to.status_code, bad_to.json()["ErrorCode"]) == (422, 300)
    assert bad_to.json()["Message"] == "Invalid 'To' address: 'nobody'."
    assert (bad_json.status_code, bad_json.json()["ErrorCode"]) == (422, 402)
    assert (no_body.status_code, no_body.json()["ErrorCode"]) == (422, 300)
    assert esp.stats()["invalid"] == 3


def test_postmark_template_and_bulk_endpoints(esp: FakePostmark) -> None:
    templated = make_message(["t1@example.com", "t2@example.com"])
    templated.template_id = "welcome"
    templated.merge_data = {"t1@example.com": {"name": "One"}, "t2@example.com": {"name": "Two"}}
    templated.send()

    with override_settings(ANYMAIL={**esp.anymail_settings(), "POSTMARK_USE_BULK_API": True}):
        bulk = make_message(["b1@example.com", "b2@example.com"])
        bulk.send()

    assert {m["recipient"]: m.get("template_model") for m in esp.messages()[:2]} == {
        "t1@example.com": {"name": "One"},
        "t2@example.com": {"name": "Two"},
    }
    assert bulk.anymail_status.status == {"queued"}
    assert set(esp.counts()) == {
        "t1@example.com",
        "t2@example.com",
        "b1@example.com",
        "b2@example.com",
    }


def test_postmark_pipelined_and_chunked_requests(esp: FakePostmark) -> None:
    body = json.dumps({"From": "a@example.com", "To": "p@example.com", "TextBody": "x"}).encode()
    request = (
        f"POST /email HTTP/1.1\r\nHost: fake\r\nX-Postmark-Server-Token: {esp.server_token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    chunked = (
        f"POST /email HTTP/1.1\r\nHost: fake\r\nX-Postmark-Server-Token: {esp.server_token}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)

    with socket.create_connection((esp.host, esp.port), timeout=5) as sock:
        sock.sendall(request * 3 + chunked)  # four requests in one write
        received = b""
        while chunk := sock.recv(65536):
            received += chunk

    assert received.count(b"HTTP/1.1 200 OK") == 4
    assert esp.counts() == {"p@example.com": 4}


def test_postmark_http_control_endpoints(esp: FakePostmark) -> None:
    with requests.Session() as session:
        session.post(f"{esp.control_url}configure", json={"rate_429": 1.0}).raise_for_status()
        with pytest.raises(AnymailRequestsAPIError):
            make_message("a@example.com").send()
        session.post(f"{esp.control_url}configure", json={"rate_429": 0}).raise_for_status()
        session.post(f"{esp.control_url}fail_next?count=1&status=503").raise_for_status()
        with pytest.raises(AnymailRequestsAPIError):
            make_message("a@example.com").send()
        make_message("a@example.com").send()
        stats = session.get(f"{esp.control_url}stats").json()
        counts = session.get(f"{esp.control_url}counts").json()
        page = session.get(f"{esp.control_url}messages", params={"limit": 1}).json()
        unknown = session.post(f"{esp.control_url}configure", json={"no_such_option": 1})

    assert (stats["errors_429"], stats["errors_5xx"], stats["accepted"]) == (1, 1, 1)
    assert counts == {"a@example.com": 1}
    assert [m["recipient"] for m in page] == ["a@example.com"]
    assert unknown.status_code == 400


def test_postmark_configure_validates_options(esp: FakePostmark) -> None:
    with pytest.raises(ValueError, match="unknown"):
        esp.configure(rate_42=0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        esp.configure(rate_429=1.5)
    with pytest.raises(ValueError, match="<= 1"):
        esp.configure(rate_429=0.6, rate_500=0.6)
    with pytest.raises(ValueError, match="status"):
        esp.fail_next(1, status=404)
    assert esp.options()["rate_429"] == 0


def test_postmark_without_bodies_keeps_ids_metadata_and_a_header_sample() -> None:
    with FakePostmark(record_bodies=False, sample_size=2) as esp:
        with (
            override_settings(EMAIL_BACKEND=POSTMARK_BACKEND, ANYMAIL=esp.anymail_settings()),
            get_connection() as connection,
        ):
            for i in range(4):
                message = make_message(f"r{i}@example.com", connection=connection)
                message.metadata = {"i": str(i)}
                message.send()
        recorded = esp.messages()
        tail = esp.messages(offset=3)

    assert [m["metadata"] for m in recorded] == [{"i": str(i)} for i in range(4)]
    assert all(m["message_id"] for m in recorded)
    assert "headers" in recorded[1] and "headers" not in recorded[2]
    assert all("text" not in m and "html" not in m for m in recorded)
    assert tail == recorded[3:]
