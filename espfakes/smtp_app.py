"""Behave as the SMTP sink at each stage: inject failures, refuse recipients, record messages.

``FakeSMTP`` (espfakes/smtp.py) runs this in a child process; its docstring describes the
failures and replies.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from espfakes._smtp import FastSMTP
from espfakes._smtp_bulk import BulkSMTPProtocol
from espfakes.base import LOCALHOST, FakeApp
from espfakes.options import address_set, non_negative, rate
from espfakes.smtp_messages import header_end_in, message_details, message_entry, summary_json

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
        reply = self.app.mail_hook(envelope, address)
        if reply == "250 OK":
            envelope.mail_options.extend(mail_options)
        return _closing_after(reply, server)

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.app.rcpt_hook(envelope, address)
        if reply == "250 OK":
            envelope.rcpt_options.extend(rcpt_options)
        return _closing_after(reply, server)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        app = self.app
        if delay := app.data_delay():
            await asyncio.sleep(delay)
        reply, close = app.data_hook(envelope, lambda: app.accept(envelope))
        if reply is None:
            server.transport.abort()
            return "250 2.0.0 Ok (never heard: the connection was dropped)"
        if close:
            server.loop.call_soon(server.transport.close)
        return reply


def _closing_after(reply: str, server: Any) -> str:
    if reply.startswith("421"):
        # aiosmtpd writes the reply as soon as the hook returns, before the loop runs this
        # callback; close() then flushes the reply and ends the connection.
        server.loop.call_soon(server.transport.close)
    return reply


class SMTPApp(FakeApp):
    """Run an SMTP server that records messages and injects transient failures.

    With ``record_bodies`` a connection is served by aiosmtpd (espfakes/_smtp.py), which hands
    over each message whole; without, by espfakes/_smtp_bulk.py, which reads it where it lies
    in the receive buffer. The option is read when a connection opens.
    """

    name = "FakeSMTP"
    hostname = "fake-smtp.localhost"
    ident = "espfakes FakeSMTP"
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
        self._reject: frozenset[str] = frozenset()
        super().__init__(options, echo)

    def options_changed(self) -> None:
        """Cache the options read on every message."""
        self.delay = self.options["latency_ms"] / 1000.0
        self._reject = self.options["reject_recipients"]

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
        if fault is None:
            fail_rate = self.options["temp_fail_rate"]
            if not fail_rate or not self.faults.pick([(fail_rate, True)]):
                return None
            fault = [self.options["temp_fail_code"], None]
        if fault is not None and fault[1] is None:
            fault = [fault[0], self.options["temp_fail_stage"]]
        return fault

    # What both protocols ask, at each stage of a transaction ----------------------------------

    def mail_hook(self, envelope: Any, address: str) -> str:
        """Start a transaction from ``address``; return the reply to MAIL (421: then close)."""
        self.stats["requests"] += 1
        envelope.fake_fault = self.decide_fault()
        if failure := self.failure_at("mail", envelope):
            return failure
        envelope.mail_from = address
        return "250 OK"

    def rcpt_hook(self, envelope: Any, address: str) -> str:
        """Add recipient ``address``; return the reply to RCPT (421: then close)."""
        if failure := self.failure_at("rcpt", envelope):
            return failure
        if self._reject and address.lower() in self._reject:
            self.stats["rejected"] += 1
            self.say(f"550 rejected recipient {address}")
            return f"550 5.1.1 <{address}>: Recipient address rejected: inactive recipient"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def connection_opened(self) -> None:
        """Count a connection served by espfakes/_smtp_bulk.py."""
        self.stats["connections"] += 1

    def data_delay(self) -> float:
        """Return how many seconds to wait before answering a message (``latency_ms``)."""
        return self.delay

    def data_hook(self, envelope: Any, record: Callable[[], str]) -> tuple[str | None, bool]:
        """Decide what becomes of a message that arrived; ``record()`` records it.

        Return the reply, or ``None`` when the connection is to drop unanswered, and whether
        to close the connection after the reply.
        """
        if getattr(envelope, "fake_fault", None) == [DROP_AFTER_ACCEPT, "data"]:
            # The message is taken, then the connection dies before the client hears so.
            record()
            self.stats["dropped"] += 1
            self.say("fault: connection dropped after accepting the message")
            return None, True
        if failure := self.failure_at("data", envelope):
            return failure, failure.startswith("421")
        return record(), False

    def failure_at(self, when: str, envelope: Any) -> str | None:
        """Return the failure reply due at stage ``when`` of this transaction, if any.

        A 421 counts as a dropped connection; the protocol closes it after the reply.
        """
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
        return f"{code} {TEMP_FAIL_TEXT.get(code, '4.0.0 Temporary failure, try again later')}"

    def accept(self, envelope: Any) -> str:
        """Record a message aiosmtpd read and return the 250 reply with its queue id."""
        content: bytes = envelope.original_content or b""
        return self._record(content, envelope.rcpt_tos, envelope.mail_from)

    def record_raw(
        self, data: bytearray, start: int, end: int, stuffed_dots: int, envelope: Any
    ) -> str:
        """Record the message ``data[start:end]``, still dot-stuffed; return the 250 reply.

        Used by espfakes/_smtp_bulk.py. Without details (see ``wants_details``) nothing is
        copied: ``summary_json`` reads the Message-ID and size in place.
        """
        if self.echo is not None:
            content = (b"\r\n" + data[start:end]).replace(b"\r\n.", b"\r\n")[2:]
            return self._record(bytes(content), envelope.rcpt_tos, envelope.mail_from)
        self._sequence += 1
        queue_id = f"{self._queue_prefix}{self._sequence:08X}"
        rcpt_tos = envelope.rcpt_tos
        if len(rcpt_tos) == 1:
            recipients = [rcpt_tos[0].lower()]
        else:
            recipients = list(dict.fromkeys(address.lower() for address in rcpt_tos))
        entry = summary_json(
            data, start, end, stuffed_dots, queue_id, recipients, envelope.mail_from
        )
        completion = None
        if self.wants_details():
            # Parsing headers costs more than all the rest; it waits until they are read.
            headers_end = min(header_end_in(data, start, end) + 4, end)
            headers = (b"\r\n" + data[start:headers_end]).replace(b"\r\n.", b"\r\n")[2:]
            completion = partial(message_details, bytes(headers), full=False)
        self.stats["accepted"] += 1
        self.recorder.add_encoded(recipients, entry, completion)
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def _record(self, content: bytes, rcpt_tos: list[str], mail_from: str | None) -> str:
        self._sequence += 1
        queue_id = f"{self._queue_prefix}{self._sequence:08X}"
        recipients = list(dict.fromkeys(address.lower() for address in rcpt_tos))
        entry = message_entry(
            content,
            queue_id,
            recipients,
            mail_from,
            # In the foreground each message's subject is printed, so parse its headers then.
            details=self.wants_details() or self.echo is not None,
            bodies=self.options["record_bodies"],
        )
        self.stats["accepted"] += 1
        self.recorder.add(recipients, entry)
        if self.echo is not None:
            self.say(
                f"accepted {queue_id} from={mail_from} to={','.join(recipients)} "
                f"subject={entry.get('subject')!r} size={len(content)}"
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def info(self) -> dict[str, Any]:
        """Describe the server."""
        return {**super().info(), "hostname": self.hostname}

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

        def factory() -> asyncio.BaseProtocol:
            if not self.options["record_bodies"]:
                return BulkSMTPProtocol(self)  # counts the connection when it is made
            self.stats["connections"] += 1
            # An explicit hostname avoids aiosmtpd's socket.getfqdn(), a DNS lookup per
            # connection.
            return FastSMTP(
                handler,
                hostname=self.hostname,
                ident=self.ident,
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
