"""Behave as the SMTP sink at each stage: inject failures, refuse recipients, record messages.

``FakeSMTP`` (espfakes/smtp.py) runs this in a child process; its docstring describes the
failures and replies.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

from aiosmtpd.smtp import SMTP

from espfakes._smtp import FastSMTP
from espfakes.base import LOCALHOST, FakeApp
from espfakes.options import address_set, non_negative, rate
from espfakes.smtp_messages import message_entry

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
        entry = message_entry(
            content,
            queue_id,
            recipients,
            envelope.mail_from,
            # In the foreground each message's subject is printed, so parse its headers then.
            details=self.wants_details() or self.echo is not None,
            bodies=self.options["record_bodies"],
        )
        self.stats["accepted"] += 1
        self.recorder.add(recipients, entry)
        if self.echo is not None:
            self.say(
                f"accepted {queue_id} from={envelope.mail_from} to={','.join(recipients)} "
                f"subject={entry.get('subject')!r} size={len(content)}"
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"

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
            return FastSMTP(
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
