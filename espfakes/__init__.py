"""Fake email service providers for tests and benchmarks.

``FakePostmark`` speaks enough of Postmark's HTTP API for anymail's real Postmark backend, and
``FakeSMTP`` is an SMTP sink for Django's SMTP backend. Each runs its server in a child process
bound to 127.0.0.1 only, records what it accepts and can inject faults on demand.

Provider modules sit beside a small base, as django-anymail lays out its backends:

* ``postmark`` and ``smtp``: the handles tests and benchmarks use, and the ``python -m`` entry
  points; ``postmark_app``/``smtp_app`` the servers they run; ``postmark_messages`` and
  ``smtp_messages`` check and summarise one message for the record; ``postmark_webhooks``
  posts Postmark's tracking webhooks about accepted messages;
* ``base``: ``FakeApp``, the server base class, with ``recording``, ``faults``, ``options``
  and ``encoding`` for what every server shares;
* ``process``: ``FakeServerProcess`` and the control channel to the child; ``cli``: the
  command line, in the foreground or under control;
* ``_http`` and ``_smtp``: the protocol servers under the Postmark fake and the SMTP sink.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from espfakes.postmark import FakePostmark
    from espfakes.smtp import FakeSMTP

__all__ = ["FakePostmark", "FakeSMTP"]


def __getattr__(name: str) -> Any:
    """Import the fakes lazily.

    An eager import here would load ``espfakes.postmark`` before ``python -m espfakes.postmark``
    runs it as ``__main__``, which makes runpy warn about a module imported twice.
    """
    if name == "FakePostmark":
        from espfakes.postmark import FakePostmark

        return FakePostmark
    if name == "FakeSMTP":
        from espfakes.smtp import FakeSMTP

        return FakeSMTP
    raise AttributeError(f"module 'espfakes' has no attribute {name!r}")
