"""The SMTP sink without bodies (espfakes/_smtp_bulk.py) accounts for every byte as aiosmtpd does.

It finds a message's end with searches of the receive buffer instead of reading line by line,
so these tests feed it one conversation cut at every place a read can end: in the middle of a
command, of the end marker "\\r\\n.\\r\\n", of a dot-stuffed line, between a message and the
envelope pipelined after it. Each cut must give the same replies and the same record, and the
record must be what ``message_entry`` makes of the message aiosmtpd would have handed over.
"""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
from collections.abc import Iterator

import pytest

from espfakes import FakeSMTP
from espfakes._smtp_bulk import BulkSMTPProtocol, find_data_end
from espfakes.encoding import dumps
from espfakes.recording import Recorder
from espfakes.smtp_app import SMTPApp
from espfakes.smtp_messages import message_entry, summary_json

# Messages as the sender means them; the conversation dot-stuffs them.
MESSAGES = [
    b"Message-ID: <first@example.org>\r\nSubject: plain\r\n\r\nOne line.\r\n",
    # Lines that start with a dot, the first line included, and one that is only a dot.
    b".starts the message\r\nMessage-ID: <dots@example.org>\r\n\r\n.\r\n..\r\n.x\r\nend.\r\n",
    b"",  # the client sends only "." CRLF
    b"\r\n",
    b"subject: no id\r\n\r\nbody\r\n\r\n",
    # A folded Message-ID, in lower case, after the first line.
    b"To: a@example.org\r\nmessage-id:\r\n <folded@example.org>\r\n\r\n" + b"q=3D1\r\n" * 50,
    b"Message-ID: <last@example.org>\r\n\r\nno body line end",  # the client adds the CRLF
]


def _stuffed(message: bytes) -> bytes:
    """Return the DATA a client sends for ``message``, as smtplib's ``data()`` does."""
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"
    return (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"


def _as_received(message: bytes) -> bytes:
    return message if not message or message.endswith(b"\r\n") else message + b"\r\n"


def _conversation() -> bytes:
    parts = [b"EHLO client.example.org\r\n"]
    for number, message in enumerate(MESSAGES):
        if number == 3:
            # The general path: smtplib's lower-case commands with a parameter, and a RSET.
            parts.append(
                b"RSET\r\nmail FROM:<a@example.org> size=10\r\nrcpt TO:<R3@Example.org>\r\n"
            )
            parts.append(b"data\r\n")
        else:
            # The pipelined envelope, as Rally's sender writes it.
            parts.append(
                f"MAIL FROM:<a@example.org>\r\nRCPT TO:<r{number}@example.org>\r\nDATA\r\n".encode()
            )
        parts.append(_stuffed(message))
    parts.append(b"QUIT\r\n")
    return b"".join(parts)


class _Transport(asyncio.Transport):
    """Keep what the protocol writes, as a socket would carry it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.ended = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True
        self.ended.set()

    def abort(self) -> None:
        self.close()


def _serve(pieces: list[bytes], **options: object) -> tuple[bytes, list[dict], SMTPApp]:
    """Feed ``pieces`` to one connection, one read each; return replies, records and the app."""

    async def run() -> tuple[bytes, list[dict], SMTPApp]:
        app = SMTPApp({"record_bodies": False, "sample_size": 0, **options})
        protocol = BulkSMTPProtocol(app)
        transport = _Transport()
        protocol.connection_made(transport)
        for piece in pieces:
            view = protocol.get_buffer(len(piece))
            view[: len(piece)] = piece
            protocol.buffer_updated(len(piece))
        # Queue ids start with a prefix drawn per server.
        replies = re.sub(rb"queued as [0-9A-F]{6}", b"queued as ", bytes(transport.written))
        return replies, json.loads(app.recorder.messages_json()), app

    return asyncio.run(run())


def _comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("accepted_at", "queue_id")} for r in records]


@pytest.fixture(scope="module")
def whole() -> tuple[bytes, list[dict], SMTPApp]:
    return _serve([_conversation()])


def test_each_message_is_recorded_as_message_entry_records_what_aiosmtpd_hands_over(whole):
    replies, records, app = whole
    assert app.stats["accepted"] == len(MESSAGES)
    expected = [
        message_entry(
            _as_received(message),
            "",
            [f"r{number}@example.org"],
            "a@example.org",
            details=False,
            bodies=False,
        )
        for number, message in enumerate(MESSAGES)
    ]
    assert _comparable(records) == _comparable(expected)
    assert [record["size"] for record in records] == [len(_as_received(m)) for m in MESSAGES]
    assert records[1]["message_id"] == "<dots@example.org>"
    assert records[5]["message_id"] == "<folded@example.org>"
    codes = [line[:3] for line in replies.split(b"\r\n") if line[3:4] == b" "]
    per_message = [b"250", b"250", b"354", b"250"]
    assert codes == [b"220", b"250"] + per_message * 3 + [b"250"] + per_message * 4 + [b"221"]


def test_a_read_may_end_anywhere_and_the_record_is_the_same(whole):
    replies, records, _app = whole
    stream = _conversation()
    for cut in range(1, len(stream)):
        got_replies, got_records, _ = _serve([stream[:cut], stream[cut:]])
        assert got_replies == replies, cut
        assert _comparable(got_records) == _comparable(records), cut


def test_the_end_marker_split_in_every_way_and_one_byte_at_a_time(whole):
    replies, records, _app = whole
    stream = _conversation()
    marker = stream.find(b"\r\n.\r\n")
    for first in range(marker - 2, marker + 6):
        for second in range(first + 1, marker + 7):
            pieces = [stream[:first], stream[first:second], stream[second:]]
            got_replies, got_records, _ = _serve(pieces)
            assert (got_replies, _comparable(got_records)) == (replies, _comparable(records))
    one_by_one = [stream[i : i + 1] for i in range(len(stream))]
    got_replies, got_records, _ = _serve(one_by_one)
    assert (got_replies, _comparable(got_records)) == (replies, _comparable(records))


def test_find_data_end_counts_stuffed_dots_and_stops_at_the_first_end():
    data = bytearray(b"..a\r\nb\r\n..\r\n.\r\nMAIL FROM:<x@y>\r\nDATA\r\nc\r\n.\r\n")
    assert find_data_end(data, 0, 0) == (12, 2)
    assert find_data_end(bytearray(b".\r\n"), 0, 0) == (0, 0)
    assert find_data_end(bytearray(b"abc\r\n."), 0, 0) is None
    assert find_data_end(bytearray(b"abc\r\n.\r\n"), 0, 6) == (5, 0)


def test_summary_json_encodes_what_message_entry_keeps_byte_for_byte():
    content = b"Message-ID: <id@example.org>\r\nSubject: x\r\n\r\n..dot\r\n"
    received = (b"\r\n" + content).replace(b"\r\n..", b"\r\n.")[2:]
    recipients = ['o"dd\\@example.org', "zo\u00eb@example.org"]
    for sender in ("a@example.org", None):
        summary = json.loads(summary_json(content, 0, len(content), 1, "Q1", recipients, sender))
        entry = message_entry(received, "Q1", recipients, sender, details=False, bodies=False)
        entry["accepted_at"] = summary["accepted_at"]
        assert dumps(summary) == dumps(entry)


def test_latency_delays_the_answer_and_keeps_the_order():
    stream = _conversation()
    replies, records, _app = _serve([stream], latency_ms=0)

    async def run() -> bytes:
        app = SMTPApp({"record_bodies": False, "sample_size": 0, "latency_ms": 5})
        protocol = BulkSMTPProtocol(app)
        transport = _Transport()
        protocol.connection_made(transport)
        view = protocol.get_buffer(len(stream))
        view[: len(stream)] = stream
        protocol.buffer_updated(len(stream))
        assert app.stats["accepted"] == 0  # the first message is waiting out the latency
        await asyncio.wait_for(transport.ended.wait(), timeout=10)
        assert app.stats["accepted"] == len(MESSAGES)
        return re.sub(rb"queued as [0-9A-F]{6}", b"queued as ", bytes(transport.written))

    assert asyncio.run(run()) == replies


@pytest.fixture
def bulk_sink() -> Iterator[FakeSMTP]:
    with FakeSMTP(record_bodies=False, sample_size=2) as sink:
        yield sink


def test_the_sample_keeps_headers_parsed_when_they_are_read(bulk_sink):
    with smtplib.SMTP(bulk_sink.host, bulk_sink.port, timeout=10) as client:
        for number in range(3):
            client.sendmail(
                "a@example.org",
                [f"r{number}@example.org"],
                f"Subject: number {number}\r\nMessage-ID: <m{number}@example.org>\r\n\r\n"
                ".dotted\r\n",
            )
    records = bulk_sink.messages()
    assert [record.get("subject") for record in records] == ["number 0", "number 1", None]
    assert records[0]["headers"]["Message-ID"] == ["<m0@example.org>"]
    assert [record["message_id"] for record in records] == [
        f"<m{number}@example.org>" for number in range(3)
    ]
    assert [record["size"] for record in records] == [
        len(f"Subject: number {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\n.dotted\r\n")
        for n in range(3)
    ]
    # Read in slices, the sampled entries come out the same.
    assert [bulk_sink.messages(offset=n, limit=1)[0] for n in range(3)] == records
    assert bulk_sink.messages(offset=1, limit=5) == records[1:]


def test_a_recorder_completes_entries_only_when_read():
    recorder = Recorder()
    calls = []

    def completion(number: int):
        def complete() -> dict:
            calls.append(number)
            return {"subject": f"s{number}"}

        return complete

    for number in range(4):
        entry = dumps({"n": number})
        recorder.add_encoded([f"r{number}"], entry, completion(number) if number % 2 else None)
    assert calls == []
    assert json.loads(recorder.messages_json(0, 1)) == [{"n": 0}]
    assert calls == []
    everything = json.loads(recorder.messages_json())
    assert everything == [{"n": 0}, {"n": 1, "subject": "s1"}, {"n": 2}, {"n": 3, "subject": "s3"}]
    assert json.loads(recorder.messages_json(1, 2)) == everything[1:3]
    assert calls == [1, 3]  # each completion runs once
