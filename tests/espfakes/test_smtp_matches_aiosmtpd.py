"""FastSMTP answers as aiosmtpd's own SMTP does, so the sink measures a real server.

FastSMTP (espfakes/_smtp.py) overrides aiosmtpd's private `_getaddr` and re-implements
`smtp_DATA` on its private `_reader`, `_set_post_data_state` and `_call_handler_hook`. These
tests run both classes side by side on the same input and fail when aiosmtpd changes under it.
The one difference, pinned below: FastSMTP takes a DATA line longer than RFC 5321 allows.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from espfakes._smtp import FastSMTP

ADDRESSES = [
    "<ann@example.org>",
    "<ann@example.org> SIZE=1000",
    "<a.b+tag@mail.example.org>   BODY=8BITMIME",
    "<>",
    "ann@example.org",
    '<"quoted local"@example.org>',
    "<ann@[127.0.0.1]>",
    "<bad@>",
    "<@route,@path:ann@example.org>",
    "",
]

MESSAGES = [
    b"Subject: plain\r\n\r\nOne line.\r\n",
    b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\nmid . dot\r\n.\r\nafter\r\n",
    # RFC 5321's longest line (998 octets and CRLF), and enough of them to pass the reader's
    # buffer many times over.
    b"Subject: long\r\n\r\n" + (b"x" * 998 + b"\r\n") * 200,
    b"\r\n",
    b"a\r\n",
]


def test_fast_address_parsing_gives_what_aiosmtpds_own_gives():
    loop = asyncio.new_event_loop()
    try:
        own, fast = SMTP(None, loop=loop), FastSMTP(None, loop=loop)
        for address in ADDRESSES:
            assert fast._getaddr(address) == own._getaddr(address), address
    finally:
        loop.close()


class Recorder:
    def __init__(self):
        self.contents: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's hook name
        self.contents.append(envelope.content)
        return "250 OK"


class ServerOf(Controller):
    """aiosmtpd's threaded controller, serving connections with the class it is given."""

    def __init__(self, server_class, handler, **kwargs):
        self.server_class = server_class
        super().__init__(handler, **kwargs)

    def factory(self):
        return self.server_class(self.handler, **self.SMTP_kwargs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _deliver(server_class, messages, *, data_size_limit=None):
    """Send each message to a server of this class; return what it replied and recorded."""
    recorder = Recorder()
    server = ServerOf(
        server_class,
        recorder,
        hostname="127.0.0.1",
        port=_free_port(),
        data_size_limit=data_size_limit,
    )
    server.start()
    replies = []
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            client.ehlo("client.example.org")
            for message in messages:
                client.mail("from@example.org")
                client.rcpt("to@example.org")
                # smtplib's data() dot-stuffs and ends with CRLF "." CRLF, as a real client does.
                try:
                    replies.append(client.data(message))
                except smtplib.SMTPDataError as refused:
                    replies.append((refused.smtp_code, refused.smtp_error))
                    client.rset()
    finally:
        server.stop()
    return replies, recorder.contents


@pytest.mark.parametrize("data_size_limit", [None, 1_000], ids=["no-limit", "1000-bytes"])
def test_fast_data_reading_gives_what_aiosmtpds_own_gives(data_size_limit):
    own = _deliver(SMTP, MESSAGES, data_size_limit=data_size_limit)
    fast = _deliver(FastSMTP, MESSAGES, data_size_limit=data_size_limit)
    assert fast == own
    replies, contents = fast
    assert [reply[0] for reply in replies].count(250) == len(contents)
    if data_size_limit is None:
        assert len(contents) == len(MESSAGES)
    else:
        assert (552, b"Error: Too much mail data") in replies


def test_the_one_difference_is_a_data_line_longer_than_rfc_5321_allows():
    too_long = [b"Subject: long\r\n\r\n" + b"x" * 5_000 + b"\r\n"]
    own_replies, own_contents = _deliver(SMTP, too_long)
    fast_replies, fast_contents = _deliver(FastSMTP, too_long)
    assert own_replies == [(500, b"Line too long (see RFC5321 4.5.3.1.6)")] and not own_contents
    # Rally never sends such a line: its SMTP writer and Django's email package encode bodies
    # as quoted-printable when lines run long.
    assert fast_replies == [(250, b"OK")] and fast_contents == [
        b"Subject: long\r\n\r\n" + b"x" * 5_000 + b"\r\n"
    ]
