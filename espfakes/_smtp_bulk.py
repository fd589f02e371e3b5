"""Speak the SMTP a bulk sender speaks, straight off the receive buffer, for runs without bodies.

``SMTPApp`` (espfakes/smtp_app.py) serves a connection with ``BulkSMTPProtocol`` when it
records no bodies, as ``bench_send`` and the long send tests run it, and with aiosmtpd
(espfakes/_smtp.py) when it does.

A send benchmark measures the sink beside the sender, so the sink must cost a small part of
what the sender does per message (figures: docs/performance.md). aiosmtpd runs a coroutine per
command and reads DATA a line at a time; here every complete command in a read is answered in
one write, and a message's end is found with a few searches of the buffer: the last CRLF "."
CRLF of a read, then whether any other line in between starts with a dot. Only a message with
such lines (dot-stuffed, or several messages in one read) is walked line start by line start.
The message is never copied or parsed: ``summary_json`` reads its Message-ID and size where it
lies. The first ``sample_size`` messages still keep their headers, through the same
``message_entry`` as aiosmtpd's path.

It answers EHLO, HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT as aiosmtpd does, with the same
faults (tests/espfakes/test_smtp.py runs against both); other commands get 502.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, Protocol

RECV_BUFFER_BYTES = 256 * 1024
DATA_SIZE_LIMIT = 2**25  # aiosmtpd's default, advertised as SIZE
COMMAND_LINE_LIMIT = 1 << 20  # no line end within this many bytes: refuse and drop them

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDRESS = re.compile(
    rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.DOTALL
)
_LINE_START_DOT = re.compile(rb"\r\n\.")
# A whole envelope as a pipelining sender writes it (Rally's does): answered without taking
# it apart command by command. The addresses are those _PLAIN_ANGLE_ADDRESS takes.
_ATEXT_BYTES = rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDRESS_BYTES = rb"%s(?:\.%s)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*" % (_ATEXT_BYTES, _ATEXT_BYTES)
_ENVELOPE = re.compile(
    rb"MAIL FROM:<(%s)>( BODY=8BITMIME)?\r\nRCPT TO:<(%s)>\r\nDATA\r\n"
    % (_ADDRESS_BYTES, _ADDRESS_BYTES)
)

_OK = b"250 OK\r\n"
_START_DATA = b"354 End data with <CR><LF>.<CR><LF>\r\n"


class SinkApp(Protocol):
    """Describe what the protocol needs from ``SMTPApp``."""

    hostname: str
    ident: str

    def mail_hook(self, envelope: Any, address: str) -> str:
        """Start a transaction; return the reply to MAIL."""

    def rcpt_hook(self, envelope: Any, address: str) -> str:
        """Add a recipient; return the reply to RCPT."""

    def data_delay(self) -> float:
        """Return how long to wait before answering a message."""

    def data_hook(self, envelope: Any, record: Callable[[], str]) -> tuple[str | None, bool]:
        """Decide a message's fate: the reply (None: drop unanswered) and whether to close."""

    def record_raw(
        self,
        data: bytearray,
        start: int,
        end: int,
        stuffed_dots: int,
        envelope: Any,
    ) -> str:
        """Record the dot-stuffed message ``data[start:end]``; return the 250 reply."""

    def connection_opened(self) -> None:
        """Count a new client connection."""


class Envelope:
    """Hold one transaction's sender, recipients and injected fault."""

    __slots__ = ("fake_fault", "fake_fault_counted", "mail_from", "rcpt_tos")

    def __init__(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_tos: list[str] = []
        self.fake_fault: list[Any] | None = None
        self.fake_fault_counted = False


def parse_path(arg: str) -> tuple[str | None, str]:
    """Split a MAIL/RCPT argument into address and parameters, as aiosmtpd's ``_getaddr``.

    The address is ``None`` when it cannot be parsed, ``""`` when there is none.
    """
    match = _PLAIN_ANGLE_ADDRESS.fullmatch(arg) if arg else None
    if match is not None:
        return match.group(1), match.group(2).strip()
    if not arg:
        return "", ""
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, ""
    return address.addr_spec, rest


def find_data_end(data: bytearray, start: int, searched: int) -> tuple[int, int] | None:
    """Find the end of the DATA that begins at ``data[start]``.

    Return ``(content_end, stuffed_dots)``: the content is ``data[start:content_end]`` (its last
    CRLF included) and the terminating "." CRLF follows it; ``stuffed_dots`` lines in it start
    with a doubled dot. Return ``None`` when the end has not arrived; ``data[start:searched]``
    is known to hold no end marker, so a caller passes how far the data reached last time.
    """
    if searched - start < 3 and data[start : start + 3] == b".\r\n":
        return start, 0  # an empty message
    # The last end marker in what arrived since the last search, the usual case being one
    # message per read, followed by the next envelope.
    marker = data.rfind(b"\r\n.\r\n", max(start, searched - 4))
    if marker < 0:
        return None
    stuffed = 1 if data[start : start + 1] == b"." else 0
    if not _LINE_START_DOT.search(data, start, marker):
        return marker + 2, stuffed
    # Dot-stuffed lines, or an end marker before this one: walk the line-start dots in order.
    for found in _LINE_START_DOT.finditer(data, start, marker + 3):
        at = found.start()
        if data[at + 3 : at + 5] == b"\r\n":
            return at + 2, stuffed
        stuffed += 1
    raise AssertionError("unreachable: the marker itself starts a line with a dot")


class BulkSMTPProtocol(asyncio.BufferedProtocol):
    """Answer one SMTP connection; every complete command in a read is answered in one write."""

    def __init__(self, app: SinkApp) -> None:
        self._app = app
        self._recv_buffer = memoryview(bytearray(RECV_BUFFER_BYTES))
        self._buf = bytearray()
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._replies: list[bytes] = []
        self._host_name: str | None = None
        self._envelope = Envelope()
        self._in_data = False
        self._searched = 0  # in DATA: how far the buffer is known to hold no end marker
        self._too_big = False  # in DATA: more than DATA_SIZE_LIMIT arrived; the rest is dropped
        self._waiting: asyncio.TimerHandle | None = None  # a message waiting out the latency
        self._closed = False

    # asyncio callbacks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet the client."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._app.connection_opened()
        transport.write(f"220 {self._app.hostname} {self._app.ident}\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection; a message waiting out its latency is never recorded.

        aiosmtpd cancels the DATA hook in the same case.
        """
        self._closed = True
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        self._buf.clear()

    def get_buffer(self, sizehint: int) -> memoryview:
        """Lend asyncio the reusable receive buffer."""
        return self._recv_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """Take what arrived and answer everything complete in it."""
        self._buf += self._recv_buffer[:nbytes]
        if self._waiting is None:
            self._pump()

    # The conversation -------------------------------------------------------------------------

    def _pump(self) -> None:
        buf = self._buf
        pos = 0
        while not self._closed:
            if self._in_data:
                if not self._data(pos):
                    # _data() compacted the buffer, or is waiting out the latency.
                    pos = 0
                    break
                pos = 0
                continue
            envelope = _ENVELOPE.match(buf, pos)
            if envelope is not None:
                pos = envelope.end()
                self._mail_address(envelope.group(1).decode(), (envelope.group(2) or b"").decode())
                if not self._closed:
                    self._rcpt_address(envelope.group(3).decode())
                if not self._closed:
                    self._start_data("")
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > COMMAND_LINE_LIMIT:
                    self._replies.append(b"500 Command line too long\r\n")
                    pos = len(buf)
                break
            line = buf[pos:eol]
            pos = eol + 2
            self._command(line)
        if pos:
            del buf[:pos]
        self._flush()

    def _flush(self) -> None:
        if self._replies and not self._closed and self._transport is not None:
            replies = self._replies
            self._transport.write(replies[0] if len(replies) == 1 else b"".join(replies))
            replies.clear()

    def _command(self, raw: bytearray) -> None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._replies.append(b"500 Error: strict ASCII mode\r\n")
            return
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        if verb == "MAIL":
            self._mail(arg)
        elif verb == "RCPT":
            self._rcpt(arg)
        elif verb == "DATA":
            self._start_data(arg)
        elif verb == "RSET":
            self._reply("501 Syntax: RSET" if arg else "250 OK", reset=not arg)
        elif verb == "EHLO":
            self._hello(arg, extended=True)
        elif verb == "HELO":
            self._hello(arg, extended=False)
        elif verb == "NOOP":
            self._replies.append(_OK)
        elif verb == "QUIT":
            if arg:
                self._replies.append(b"501 Syntax: QUIT\r\n")
                return
            self._replies.append(b"221 Bye\r\n")
            self._close()
        elif not verb:
            self._replies.append(b"500 Error: bad syntax\r\n")
        elif verb in ("AUTH", "STARTTLS", "VRFY", "EXPN", "HELP"):
            self._replies.append(b"502 Command not implemented\r\n")
        else:
            self._reply(f'500 Error: command "{verb}" not recognized')

    def _reply(self, text: str, *, reset: bool = False) -> None:
        if reset:
            self._envelope = Envelope()
        self._replies.append(text.encode() + b"\r\n")

    def _hello(self, hostname: str, *, extended: bool) -> None:
        if not hostname:
            self._reply(f"501 Syntax: {'EHLO' if extended else 'HELO'} hostname")
            return
        self._envelope = Envelope()
        self._host_name = hostname
        name = self._app.hostname
        if not extended:
            self._reply(f"250 {name}")
            return
        self._reply(
            f"250-{name}\r\n250-SIZE {DATA_SIZE_LIMIT}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
            "250-PIPELINING\r\n250 HELP"
        )

    def _mail(self, arg: str) -> None:
        if self._needs_hello():
            return
        syntax = "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"
        if arg[:5].upper() != "FROM:":
            self._reply(syntax)
            return
        address, params = parse_path(arg[5:].strip())
        if address is None:
            self._reply("553 5.1.3 Error: malformed address")
        elif not address:
            self._reply(syntax)
        else:
            self._mail_address(address, params)

    def _mail_address(self, address: str, params: str) -> None:
        if self._needs_hello():
            return
        envelope = self._envelope
        if envelope.mail_from:
            self._reply("503 Error: nested MAIL command")
            return
        for param in params.upper().split():
            name, _, value = param.partition("=")
            if name == "SIZE" and value.isdigit() and int(value) > DATA_SIZE_LIMIT:
                self._reply("552 Error: message size exceeds fixed maximum message size")
                return
        self._hook_reply(self._app.mail_hook(envelope, address))

    def _rcpt(self, arg: str) -> None:
        if self._needs_hello() or self._needs_mail():
            return
        syntax = "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]"
        if arg[:3].upper() != "TO:":
            self._reply(syntax)
            return
        address, _params = parse_path(arg[3:].strip())
        if address is None:
            self._reply("553 5.1.3 Error: malformed address")
        elif not address:
            self._reply(syntax)
        else:
            self._rcpt_address(address)

    def _rcpt_address(self, address: str) -> None:
        if self._needs_hello() or self._needs_mail():
            return
        self._hook_reply(self._app.rcpt_hook(self._envelope, address))

    def _hook_reply(self, reply: str) -> None:
        if reply == "250 OK":
            self._replies.append(_OK)
            return
        self._replies.append(reply.encode() + b"\r\n")
        if reply.startswith("421"):
            self._close()

    def _needs_hello(self) -> bool:
        if self._host_name is None:
            self._replies.append(b"503 Error: send HELO first\r\n")
            return True
        return False

    def _needs_mail(self) -> bool:
        if not self._envelope.mail_from:
            self._replies.append(b"503 Error: need MAIL command\r\n")
            return True
        return False

    def _start_data(self, arg: str) -> None:
        if self._needs_hello():
            return
        if not self._envelope.rcpt_tos:
            self._replies.append(b"503 Error: need RCPT command\r\n")
        elif arg:
            self._replies.append(b"501 Syntax: DATA\r\n")
        else:
            self._replies.append(_START_DATA)
            self._in_data = True
            self._searched = 0
            self._too_big = False

    def _data(self, start: int) -> bool:
        """Take the message that starts at ``start`` if it has all arrived; tell if it has.

        When it has not, the buffer is compacted so that the message starts at 0.
        """
        buf = self._buf
        if start:
            if start == len(buf):  # the usual case: the message follows in a later read
                buf.clear()
                return False
            del buf[:start]
        found = find_data_end(buf, 0, self._searched)
        if found is None:
            if len(buf) > DATA_SIZE_LIMIT:
                # Keep only what may hold the start of a split end marker.
                self._too_big = True
                del buf[: len(buf) - 4]
            self._searched = len(buf)
            return False
        content_end, stuffed_dots = found
        self._in_data = False
        if self._too_big:
            del buf[: content_end + 3]
            self._end_transaction("552 Error: Too much mail data")
            return True
        delay = self._app.data_delay()
        if delay > 0:
            self._flush()  # the replies before this message go out now, in order
            self._waiting = self._loop.call_later(
                delay, self._after_delay, content_end, stuffed_dots
            )
            return False
        self._finish_message(content_end, stuffed_dots)
        return True

    def _after_delay(self, content_end: int, stuffed_dots: int) -> None:
        self._waiting = None
        self._finish_message(content_end, stuffed_dots)
        self._pump()

    def _finish_message(self, content_end: int, stuffed_dots: int) -> None:
        buf = self._buf
        envelope = self._envelope
        reply, close = self._app.data_hook(
            envelope,
            lambda: self._app.record_raw(buf, 0, content_end, stuffed_dots, envelope),
        )
        del buf[: content_end + 3]
        self._envelope = Envelope()
        if reply is None:
            # The connection dies before the client hears the answer.
            self._flush()
            self._closed = True
            if self._transport is not None:
                self._transport.abort()
            return
        self._replies.append(reply.encode() + b"\r\n")
        if close:
            self._close()

    def _end_transaction(self, reply: str) -> None:
        self._envelope = Envelope()
        self._reply(reply)

    def _close(self) -> None:
        """Send what is answered so far, then end the connection."""
        self._flush()
        self._closed = True
        if self._transport is not None:
            self._transport.close()
