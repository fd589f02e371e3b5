"""Drive the SMTP sink with Django's SMTP backend and with raw SMTP over a socket."""

from __future__ import annotations

import smtplib
import socket

import pytest
from django.core.mail import get_connection

from espfakes import FakeSMTP
from tests.espfakes.messages import make_message


def test_smtp_records_message(sink_with_bodies: FakeSMTP) -> None:
    message = make_message(
        "Ada <ada@example.com>",
        "Sign the petition",
        cc=["cc@example.com"],
        headers={"X-Campaign": "c-42"},
    )
    message.send()

    [recorded] = sink_with_bodies.messages()
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
    assert sink_with_bodies.counts() == {"ada@example.com": 1, "cc@example.com": 1}


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


def test_smtp_pipelining_and_dot_stuffing(sink_with_bodies: FakeSMTP) -> None:
    commands = (
        b"EHLO client\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<p1@example.com>\r\nDATA\r\n"
        b"Subject: one\r\n\r\n..starts with a dot\r\nends with a dot.\r\n.\r\n"
        b"RSET\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<p2@example.com>\r\nDATA\r\n"
        b"Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n"
    )
    with socket.create_connection(
        (sink_with_bodies.host, sink_with_bodies.port), timeout=5
    ) as sock:
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
    first, second = sink_with_bodies.messages()
    assert first["text"] == ".starts with a dot\nends with a dot.\n"
    assert (first["subject"], second["subject"]) == ("one", "two")


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_smtp_421_hangs_up_on_a_client_that_pipelines(sink: FakeSMTP, stage: str) -> None:
    sink.fail_next(1, code=421, stage=stage)
    commands = (
        b"EHLO client\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<p1@example.com>\r\nDATA\r\n"
        b"Subject: one\r\n\r\nbody\r\n.\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<p2@example.com>\r\nDATA\r\n"
    )
    with socket.create_connection((sink.host, sink.port), timeout=10) as sock:
        sock.sendall(commands)
        received = b""
        while chunk := sock.recv(65536):  # the server ends the connection: no time-out
            received += chunk

    codes = [line[:3] for line in received.split(b"\r\n") if line[3:4] == b" "]
    assert b"421" in codes
    stats = sink.stats()
    assert stats["accepted"] == 0
    if not sink.options()["record_bodies"]:
        # The bulk protocol hangs up at once; aiosmtpd goes on answering what it had read
        # until its close takes effect.
        assert codes[-1] == b"421" and stats["dropped"] == 1
