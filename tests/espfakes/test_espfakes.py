"""Drive the fake ESPs with the real clients: anymail's Postmark backend, Django's SMTP backend.

Plain tests: no database. They run with or without pytest-django; without it (``-p no:django``)
Django is configured here with just what sending mail needs.
"""

from __future__ import annotations

import gc
import json
import os
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
import requests
from django.conf import settings

if not settings.configured:
    settings.configure(
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DEFAULT_FROM_EMAIL="Rally <rally@example.org>",
        ANYMAIL={},
    )
    django.setup()

from anymail.exceptions import AnymailRecipientsRefused, AnymailRequestsAPIError  # noqa: E402
from django.core.mail import EmailMultiAlternatives, get_connection  # noqa: E402
from django.test import override_settings  # noqa: E402

from espfakes import FakePostmark, FakeSMTP  # noqa: E402

POSTMARK_BACKEND = "anymail.backends.postmark.EmailBackend"
SENDER = "Rally <rally@example.org>"


@pytest.fixture(autouse=True)
def empty_test_redis() -> None:
    """Replace the project's Redis-flushing autouse fixture: these tests never touch Redis.

    This keeps them runnable without a Redis server or the project's settings.
    """


def _espfakes_children() -> list[int]:
    """Return the ids of live child processes of this process that run an espfakes server."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited while we looked
        fields = stat.rsplit(")", 1)[1].split()
        state, parent = fields[0], fields[1]
        if parent == me and state != "Z" and b"espfakes." in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module", autouse=True)
def no_leaked_servers() -> Iterator[None]:
    """Fail the module if any fake server process outlives its tests."""
    before = set(_espfakes_children())
    yield
    assert set(_espfakes_children()) - before == set()


# --- Postmark ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postmark_server() -> Iterator[FakePostmark]:
    with FakePostmark() as esp:
        yield esp


@pytest.fixture
def esp(postmark_server: FakePostmark) -> Iterator[FakePostmark]:
    """Give each test a clean fake Postmark, with Django settings pointing anymail at it."""
    postmark_server.reset()
    postmark_server.configure(
        latency_ms=0, rate_429=0, rate_500=0, rate_drop=0, reject_recipients=[], seed=0
    )
    with override_settings(
        EMAIL_BACKEND=POSTMARK_BACKEND, ANYMAIL=postmark_server.anymail_settings()
    ):
        yield postmark_server


def make_message(to: str | list[str], subject: str = "Hello", **kwargs: object):
    """Build a message with a plain and an HTML body."""
    message = EmailMultiAlternatives(
        subject,
        "Plain body",
        SENDER,
        [to] if isinstance(to, str) else to,
        **kwargs,
    )
    message.attach_alternative("<p>HTML body</p>", "text/html")
    return message


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


# --- SMTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[FakeSMTP]:
    with FakeSMTP() as sink:
        yield sink


@pytest.fixture
def sink(smtp_server: FakeSMTP) -> Iterator[FakeSMTP]:
    """Give each test a clean SMTP sink, with Django's SMTP backend pointing at it."""
    smtp_server.reset()
    smtp_server.configure(temp_fail_rate=0, temp_fail_stage="rcpt", reject_recipients=[], seed=0)
    with override_settings(**smtp_server.django_settings()):
        yield smtp_server


def test_smtp_records_message(sink: FakeSMTP) -> None:
    message = make_message(
        "Ada <ada@example.com>",
        "Sign the petition",
        cc=["cc@example.com"],
        headers={"X-Campaign": "c-42"},
    )
    message.send()

    [recorded] = sink.messages()
    assert recorded["recipients"] == ["ada@example.com", "cc@example.com"]
    assert recorded["recipient"] == "ada@example.com"
    assert recorded["subject"] == "Sign the petition"
    assert recorded["headers"]["X-Campaign"] == ["c-42"]
    assert recorded["headers"]["To"] == ["Ada <ada@example.com>"]
    assert recorded["message_id"] == message.extra_headers.get("Message-ID", recorded["message_id"])
    assert recorded["message_id"].startswith("<")
    assert recorded["text"] == "Plain body"
    assert recorded["html"] == "<p>HTML body</p>"
    assert recorded["size"] > 0
    assert sink.counts() == {"ada@example.com": 1, "cc@example.com": 1}


def test_smtp_many_messages_over_one_connection(sink: FakeSMTP) -> None:
    with get_connection() as connection:
        sent = connection.send_messages([make_message(f"r{i}@example.com") for i in range(50)])

    assert sent == 50
    stats = sink.stats()
    assert (stats["accepted"], stats["connections"]) == (50, 1)
    assert len(sink.counts()) == 50


def test_smtp_451_at_rcpt_then_recovers_on_the_same_connection(sink: FakeSMTP) -> None:
    sink.fail_next(1, code=451)

    with get_connection() as connection:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            make_message("a@example.com", connection=connection).send()
        make_message("b@example.com", connection=connection).send()

    assert caught.value.recipients["a@example.com"][0] == 451
    assert sink.counts() == {"b@example.com": 1}
    assert sink.stats()["temp_failures"] == 1


def test_smtp_451_at_data(sink: FakeSMTP) -> None:
    sink.fail_next(1, code=451, stage="data")

    with pytest.raises(smtplib.SMTPDataError) as caught:
        make_message("a@example.com").send()

    assert caught.value.smtp_code == 451
    assert sink.counts() == {}


def test_smtp_421_closes_the_connection(sink: FakeSMTP) -> None:
    sink.fail_next(1, code=421)

    with get_connection() as connection:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            make_message("a@example.com", connection=connection).send()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            make_message("b@example.com", connection=connection).send()

    assert caught.value.recipients["a@example.com"][0] == 421
    stats = sink.stats()
    assert (stats["dropped"], stats["accepted"]) == (1, 0)


def test_smtp_fail_next_is_exact_and_rate_is_seeded(sink: FakeSMTP) -> None:
    def run(n: int) -> list[object]:
        outcomes: list[object] = []
        with get_connection() as connection:
            for i in range(n):
                try:
                    make_message(f"r{i}@example.com", connection=connection).send()
                    outcomes.append("sent")
                except smtplib.SMTPRecipientsRefused as error:
                    outcomes.append(error.recipients[f"r{i}@example.com"][0])
        return outcomes

    sink.fail_next(3, code=450)
    assert run(5) == [450, 450, 450, "sent", "sent"]

    sink.configure(temp_fail_rate=0.4, temp_fail_code=454, seed=99)
    sink.reset()
    first = run(20)
    sink.reset()
    assert run(20) == first
    assert set(first) == {454, "sent"}


def test_smtp_rejected_recipient_is_permanent_550(sink: FakeSMTP) -> None:
    sink.configure(reject_recipients=["gone@example.com"])

    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        make_message("gone@example.com").send()
    make_message(["gone@example.com", "here@example.com"]).send()

    assert caught.value.recipients["gone@example.com"][0] == 550
    assert sink.counts() == {"here@example.com": 1}


def test_smtp_pipelining_and_dot_stuffing(sink: FakeSMTP) -> None:
    commands = (
        b"EHLO client\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<p1@example.com>\r\nDATA\r\n"
        b"Subject: one\r\n\r\n..starts with a dot\r\nends with a dot.\r\n.\r\n"
        b"RSET\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<p2@example.com>\r\nDATA\r\n"
        b"Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n"
    )
    with socket.create_connection((sink.host, sink.port), timeout=5) as sock:
        sock.sendall(commands)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk

    codes = [line[:3] for line in received.split(b"\r\n") if line[3:4] == b" "]
    assert codes == [b"220", b"250", b"250", b"250", b"354", b"250", b"250"] + [
        b"250",
        b"250",
        b"354",
        b"250",
        b"221",
    ]
    first, second = sink.messages()
    assert first["text"] == ".starts with a dot\nends with a dot.\n"
    assert (first["subject"], second["subject"]) == ("one", "two")


# --- process lifecycle -------------------------------------------------------------------------


def test_server_process_is_stopped_when_the_with_block_fails() -> None:
    with pytest.raises(RuntimeError, match="boom"), FakeSMTP() as sink:
        pid = sink.pid
        assert pid is not None and _alive(pid)
        raise RuntimeError("boom")

    assert not _alive(pid)
    assert not sink.running


def test_server_process_is_killed_when_its_owner_is_collected() -> None:
    esp = FakePostmark().start()
    pid = esp.pid
    assert pid is not None and _alive(pid)

    del esp
    gc.collect()

    assert not _alive(pid)
