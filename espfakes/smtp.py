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

import sys
from collections.abc import Iterable
from typing import Any

from espfakes.base import DEFAULT_SAMPLE_SIZE
from espfakes.cli import run_main
from espfakes.options import address_list
from espfakes.process import FakeServerProcess
from espfakes.smtp_app import SMTPApp

__all__ = ["FakeSMTP", "SMTPApp"]


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
