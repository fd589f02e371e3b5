"""Sink SMTP mail on 127.0.0.1 with aiosmtpd, recording messages and injecting failures.

Point Django's SMTP backend at it with ``EMAIL_HOST=127.0.0.1``, ``EMAIL_PORT=<port>``, no
TLS and no authentication (``FakeSMTP.django_settings()`` returns exactly that).

Transient failures answer 421/450/451/452/454 at MAIL, RCPT or DATA time, as a real server
would; 421 also closes the connection. Recipients in ``reject_recipients`` are refused with a
permanent 550 at RCPT time. Many messages per connection work (RSET or not between them), and
the server advertises PIPELINING since aiosmtpd reads commands strictly in order.

Run it standalone with ``python -m espfakes.smtp --port 1025``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, syntax

from espfakes.base import DEFAULT_SAMPLE_SIZE, LOCALHOST, FakeApp
from espfakes.cli import run_main
from espfakes.options import address_list, address_set, non_negative, rate
from espfakes.process import FakeServerProcess

__all__ = ["FakeSMTP", "SMTPApp"]

STAGES = ("mail", "rcpt", "data")
DROP_AFTER_ACCEPT = "drop_after_accept"
ACCEPT = "accept"  # queued by fail_next to let transactions through before a failure
TEMP_FAIL_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.1 Mailbox temporarily unavailable, try again later",
    451: "4.3.0 Requested action aborted: local error in processing",
    452: "4.3.1 Insufficient system storage",
    454: "4.7.0 Temporary failure, try again later",
}
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_FULL_PARSER = BytesParser(policy=policy.default)
_HEADER_PARSER = BytesHeaderParser(policy=policy.default)


def temp_fail_code(value: Any) -> int:
    """Convert ``value`` to a transient (4xx) SMTP reply code."""
    code = int(value)
    if not 400 <= code <= 499:
        raise ValueError(f"a transient SMTP code must be 4xx, got {value!r}")
    return code


def stage(value: Any) -> str:
    """Check that ``value`` names an SMTP stage where failures can be injected."""
    if value not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {value!r}")
    return str(value)


def _header_dict(message: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name, []).append(str(value))
    return headers


def _parts(message: EmailMessage) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """Return the first text/plain and text/html bodies, and a summary of other parts."""
    text = html = None
    attachments: list[dict[str, Any]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        if not filename and content_type == "text/plain" and text is None:
            text = part.get_content()
        elif not filename and content_type == "text/html" and html is None:
            html = part.get_content()
        else:
            payload = part.get_payload(decode=True) or b""
            attachments.append(
                {"name": filename, "content_type": content_type, "size": len(payload)}
            )
    return text, html, attachments


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDRESS = re.compile(
    rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.DOTALL
)


class _FastSMTP(SMTP):
    """Speed up aiosmtpd's two hot spots without changing what it answers.

    Profiling a send benchmark showed aiosmtpd spending most of its time parsing MAIL/RCPT
    addresses with the email package's full RFC 5322 header parser and reading DATA one line
    per ``readuntil()``. Plain ``<local@domain>`` addresses take a regex fast path (anything
    else still goes to aiosmtpd's parser), and DATA is read in runs up to the next
    ``.<CRLF>``, so the sink keeps up with the senders it measures (figures:
    docs/performance.md).
    """

    # The stream reader's limit, which caps how much one readuntil() may return. DATA needs
    # more than aiosmtpd's 1001; command lines are still checked against command_size_limit.
    line_length_limit = 1 << 20

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_ANGLE_ADDRESS.fullmatch(arg) if arg else None
        if match is None:
            return super()._getaddr(arg)
        return match.group(1), match.group(2).strip()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's method name
        """Read a message body, undo dot-stuffing and pass it to the DATA hook."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, too_big = await self._read_data()
        if too_big:
            self._set_post_data_state()
            await self.push("552 Error: Too much mail data")
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def _read_data(self) -> tuple[bytes, bool]:
        """Return the dot-unstuffed message and whether it exceeded ``data_size_limit``."""
        reader = self._reader
        limit = self.data_size_limit or 0
        # The end marker is CRLF "." CRLF, whose leading CRLF ends the last line. Searching for
        # all five bytes finds it in one pass, unless the data is empty (just "." CRLF) or the
        # first line is too short for three bytes to be free of CR/LF: read those line by line.
        head = await reader.readexactly(3)
        if head == b".\r\n":
            return b"", False
        if b"\r" in head or b"\n" in head:
            buffered = bytearray(head)
            while not buffered.endswith(b"\r\n.\r\n"):
                buffered += await reader.readuntil(b"\r\n")
            chunks = [bytes(buffered)]
            size = len(buffered)
        else:
            chunks = [head]
            size = len(head)
            while True:
                try:
                    piece = await reader.readuntil(b"\r\n.\r\n")
                except asyncio.LimitOverrunError as exc:
                    # No end marker within the reader's limit: take what is there and go on.
                    # (asyncio keeps a possibly split marker's bytes buffered.)
                    piece = await reader.readexactly(exc.consumed)
                    size += len(piece)
                    if not limit or size <= limit:
                        chunks.append(piece)
                    continue
                size += len(piece)
                chunks.append(piece)
                break
        if limit and size > limit:
            return b"", True
        data = b"".join(chunks)[:-3]  # drop the terminating "." CRLF
        # RFC 5321 4.5.2: remove the leading "." of every line that starts with one.
        return (b"\r\n" + data).replace(b"\r\n.", b"\r\n")[2:], False


class _Handler:
    """Implement aiosmtpd's handler hooks on behalf of ``SMTPApp``."""

    def __init__(self, app: SMTPApp) -> None:
        self.app = app

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to the hook once one exists
        responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        app = self.app
        app.stats["requests"] += 1
        envelope.fake_fault = app.decide_fault()
        if failure := app.failure_at("mail", server, envelope):
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        app = self.app
        if failure := app.failure_at("rcpt", server, envelope):
            return failure
        if address.lower() in app.options["reject_recipients"]:
            app.stats["rejected"] += 1
            app.say(f"550 rejected recipient {address}")
            return f"550 5.1.1 <{address}>: Recipient address rejected: inactive recipient"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        app = self.app
        if app.delay:
            await asyncio.sleep(app.delay)
        if getattr(envelope, "fake_fault", None) == [DROP_AFTER_ACCEPT, "data"]:
            # The message is taken, then the connection dies before the client hears so.
            app.accept(envelope)
            app.stats["dropped"] += 1
            app.say("fault: connection dropped after accepting the message")
            server.transport.abort()
            return "250 2.0.0 Ok (never heard: the connection was dropped)"
        if failure := app.failure_at("data", server, envelope):
            return failure
        return app.accept(envelope)


class SMTPApp(FakeApp):
    """Run an aiosmtpd server that records messages and injects transient failures."""

    name = "FakeSMTP"
    option_spec = {
        **FakeApp.option_spec,
        "temp_fail_rate": (0.0, rate),
        "temp_fail_code": (451, temp_fail_code),
        "temp_fail_stage": ("rcpt", stage),
        "reject_recipients": (frozenset(), address_set),
        "latency_ms": (0.0, non_negative),
    }
    stat_keys = (
        "requests",
        "accepted",
        "rejected",
        "temp_failures",
        "dropped",
        "connections",
    )

    def __init__(self, options: Mapping[str, Any] | None = None, echo: Any = None) -> None:
        self._queue_prefix = uuid.uuid4().hex[:6].upper()
        self._sequence = 0
        self._server: asyncio.Server | None = None
        self.delay = 0.0
        super().__init__(options, echo)

    def options_changed(self) -> None:
        """Cache the latency read on every message."""
        self.delay = self.options["latency_ms"] / 1000.0

    def parse_fail_next(self, args: Mapping[str, Any]) -> Any:
        """Accept ``code`` (4xx, ``"drop_after_accept"`` or ``"accept"``) and ``stage``."""
        if args.get("code") == DROP_AFTER_ACCEPT:
            return [DROP_AFTER_ACCEPT, "data"]
        if args.get("code") == ACCEPT:
            return [ACCEPT, None]
        code = temp_fail_code(args.get("code", 421))
        when = args.get("stage")
        return [code, None if when is None else stage(when)]

    def decide_fault(self) -> list[Any] | None:
        """Decide, once per transaction, whether and where it fails."""
        fault = self.faults.take_forced()
        if fault is not None and fault[0] == ACCEPT:
            return None
        if fault is None and self.faults.pick([(self.options["temp_fail_rate"], True)]):
            fault = [self.options["temp_fail_code"], None]
        if fault is not None and fault[1] is None:
            fault = [fault[0], self.options["temp_fail_stage"]]
        return fault

    def failure_at(self, when: str, server: Any, envelope: Any) -> str | None:
        """Return the failure reply due at stage ``when`` of this transaction, if any."""
        fault = getattr(envelope, "fake_fault", None)
        if fault is None or fault[1] != when:
            return None
        code = fault[0]
        if not getattr(envelope, "fake_fault_counted", False):
            envelope.fake_fault_counted = True
            self.stats["temp_failures"] += 1
        self.say(f"fault: {code} at {when.upper()}")
        if code == 421:
            self.stats["dropped"] += 1
            # aiosmtpd writes the reply as soon as this hook returns, before the loop runs
            # this callback; close() then flushes the reply and ends the connection.
            server.loop.call_soon(server.transport.close)
        return f"{code} {TEMP_FAIL_TEXT.get(code, '4.0.0 Temporary failure, try again later')}"

    def accept(self, envelope: Any) -> str:
        """Record an accepted message and return the 250 reply with its queue id."""
        self._sequence += 1
        queue_id = f"{self._queue_prefix}{self._sequence:08X}"
        content: bytes = envelope.original_content or b""
        recipients = list(dict.fromkeys(address.lower() for address in envelope.rcpt_tos))
        entry: dict[str, Any] = {
            "queue_id": queue_id,
            "message_id": None,
            "recipient": recipients[0],
            "recipients": recipients,
            "from": envelope.mail_from,
            "size": len(content),
            "accepted_at": time.time(),
        }
        if self.wants_details() or self.echo is not None:
            self._add_details(entry, content)
        else:
            match = _MESSAGE_ID.search(content, 0, _header_end(content))
            if match:
                entry["message_id"] = b" ".join(match.group(1).split()).decode("ascii", "replace")
        self.stats["accepted"] += 1
        self.recorder.add(recipients, entry)
        if self.echo is not None:
            self.say(
                f"accepted {queue_id} from={envelope.mail_from} to={','.join(recipients)} "
                f"subject={entry.get('subject')!r} size={len(content)}"
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def _add_details(self, entry: dict[str, Any], content: bytes) -> None:
        full = self.options["record_bodies"]
        # SMTP carries CRLF line ends; recorded text should read like it was written.
        content = content.replace(b"\r\n", b"\n")
        try:
            message = (_FULL_PARSER if full else _HEADER_PARSER).parsebytes(content)
        except Exception as exc:  # a sink must accept whatever arrives, and say why it's odd
            entry["parse_error"] = repr(exc)
            return
        entry["message_id"] = str(message["Message-ID"]) if "Message-ID" in message else None
        entry["subject"] = str(message["Subject"]) if "Subject" in message else None
        entry["headers"] = _header_dict(message)
        if full:
            assert isinstance(message, EmailMessage)
            entry["text"], entry["html"], entry["attachments"] = _parts(message)

    def info(self) -> dict[str, Any]:
        """Describe the server."""
        return {**super().info(), "hostname": "fake-smtp.localhost"}

    def banner(self) -> str:
        """Return the startup line with the Django settings to use."""
        return (
            f"FakeSMTP listening on {LOCALHOST}:{self.port}; Django: "
            f"EMAIL_HOST={LOCALHOST!r} EMAIL_PORT={self.port} (no TLS, no auth)"
        )

    async def start(self, port: int) -> None:
        """Listen for SMTP on 127.0.0.1:``port``."""
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def factory() -> SMTP:
            self.stats["connections"] += 1
            # An explicit hostname avoids aiosmtpd's socket.getfqdn(), a DNS lookup per
            # connection.
            return _FastSMTP(
                handler,
                hostname="fake-smtp.localhost",
                ident="espfakes FakeSMTP",
                enable_SMTPUTF8=True,
                loop=loop,
            )

        self._server = await loop.create_server(factory, LOCALHOST, port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening; open connections end with the process."""
        if self._server is not None:
            self._server.close()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the SMTP failure options."""
        super().add_arguments(parser)
        parser.add_argument("--temp-fail-rate", dest="temp_fail_rate", type=float, default=0.0)
        parser.add_argument("--temp-fail-code", dest="temp_fail_code", type=int, default=451)
        parser.add_argument("--temp-fail-stage", dest="temp_fail_stage", choices=STAGES)
        parser.add_argument("--latency-ms", dest="latency_ms", type=float, default=0.0)
        parser.add_argument(
            "--reject",
            dest="reject_recipients",
            action="append",
            metavar="ADDRESS",
            help="refuse this recipient with 550 (repeatable)",
        )
        parser.add_argument(
            "--control-port",
            dest="control_port",
            type=int,
            help="also serve the HTTP control endpoints (/_fake/stats...) on this port",
        )


def _header_end(content: bytes) -> int:
    end = content.find(b"\r\n\r\n")
    return len(content) if end < 0 else end


class FakeSMTP(FakeServerProcess):
    """Run an SMTP sink in a child process; use it as a context manager.

    ``stats()`` keys: ``requests`` (transactions, i.e. MAIL commands), ``accepted`` (messages),
    ``rejected`` (recipients refused with 550), ``temp_failures`` (transactions answered 4xx),
    ``dropped`` (connections closed after 421), ``connections`` and ``pending_failures``.
    """

    module = "espfakes.smtp"

    def __init__(
        self,
        *,
        temp_fail_rate: float = 0.0,
        temp_fail_code: int = 451,
        temp_fail_stage: str = "rcpt",
        reject_recipients: Iterable[str] = (),
        latency_ms: float = 0,
        record_bodies: bool = True,
        seed: int | None = 0,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        port: int = 0,
    ) -> None:
        super().__init__(
            port=port,
            temp_fail_rate=temp_fail_rate,
            temp_fail_code=temp_fail_code,
            temp_fail_stage=temp_fail_stage,
            reject_recipients=address_list(reject_recipients),
            latency_ms=latency_ms,
            record_bodies=record_bodies,
            seed=seed,
            sample_size=sample_size,
        )

    def django_settings(self) -> dict[str, Any]:
        """Return Django settings that send through this sink with the SMTP backend."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
        }

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change options at runtime (failure rate, code, stage, rejected recipients...)."""
        if "reject_recipients" in options:
            options["reject_recipients"] = address_list(options["reject_recipients"])
        return super().configure(**options)

    def fail_next(self, n: int, code: int | str = 421, stage: str | None = None) -> int:
        """Fail exactly the next ``n`` transactions with ``code``; return how many are queued.

        ``stage`` is ``"mail"``, ``"rcpt"`` or ``"data"`` (default: the ``temp_fail_stage``
        option). A failing transaction answers every RCPT at that stage with ``code``, so
        smtplib raises ``SMTPRecipientsRefused``; at DATA it raises ``SMTPDataError``; at MAIL
        ``SMTPSenderRefused``. 421 also closes the connection. ``code="drop_after_accept"``
        records the message and then drops the connection without a reply, as a server
        that crashed just after queueing it would. ``code="accept"`` lets ``n`` transactions
        through, to place a later failure exactly. Calls queue up in order.
        """
        return self._call("fail_next", count=n, code=code, stage=stage)


def main(argv: list[str] | None = None) -> int:
    """Run the SMTP sink in the foreground, or under ``FakeSMTP``'s control."""
    return run_main(
        SMTPApp,
        argv,
        module=FakeSMTP.module,
        description="SMTP sink on 127.0.0.1 (prints one line per message).",
        default_port=1025,
    )


if __name__ == "__main__":
    sys.exit(main())
