"""Give every fake ESP's server its base class, ``FakeApp``.

A provider module subclasses ``FakeApp`` for its protocol (``PostmarkApp``, ``SMTPApp``) and
runs it in a child process through a ``FakeServerProcess`` subclass (``FakePostmark``,
``FakeSMTP``), as django-anymail puts one module per provider beside ``backends/base.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from espfakes._http import Request, Response
from espfakes.encoding import dumps
from espfakes.faults import Faults
from espfakes.options import boolean, non_negative_int, optional_int
from espfakes.recording import Recorder

LOCALHOST = "127.0.0.1"
DEFAULT_SAMPLE_SIZE = 1000

OptionSpec = dict[str, tuple[Any, Callable[[Any], Any]]]


class FakeApp:
    """Hold one fake server's options, recording, stats and control commands.

    Subclasses implement ``start``/``stop`` for their protocol, ``parse_fail_next`` for their
    kind of failures, and may extend ``option_spec`` and ``stat_keys``.
    """

    name: ClassVar[str] = "fake"
    option_spec: ClassVar[OptionSpec] = {
        "seed": (0, optional_int),
        "record_bodies": (True, boolean),
        "sample_size": (DEFAULT_SAMPLE_SIZE, non_negative_int),
    }
    stat_keys: ClassVar[tuple[str, ...]] = ("accepted",)

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.options: dict[str, Any] = {
            name: default for name, (default, _) in self.option_spec.items()
        }
        self.echo = echo
        self.port = 0
        self.recorder = Recorder()
        self.stats: dict[str, int] = dict.fromkeys(self.stat_keys, 0)
        self.faults = Faults(self.options["seed"])
        self.configure(options or {})

    # Options ----------------------------------------------------------------------------------

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Validate and apply option changes; unknown names raise ``ValueError``."""
        unknown = sorted(set(changes) - set(self.option_spec))
        if unknown:
            raise ValueError(f"unknown {self.name} option(s): {', '.join(unknown)}")
        converted = {name: self.option_spec[name][1](value) for name, value in changes.items()}
        merged = {**self.options, **converted}
        self.validate(merged)
        self.options = merged
        if "seed" in converted:
            self.faults.reseed(merged["seed"])
        self.options_changed()

    def validate(self, options: Mapping[str, Any]) -> None:
        """Check options against each other; raise ``ValueError`` when they conflict."""

    def options_changed(self) -> None:
        """Refresh anything cached from the options."""

    # Recording --------------------------------------------------------------------------------

    def wants_details(self) -> bool:
        """Tell whether the next accepted message should be recorded in full.

        Without ``record_bodies`` only the first ``sample_size`` messages keep their headers
        and subject; the rest keep ids, recipients and metadata.
        """
        return self.options["record_bodies"] or len(self.recorder) < self.options["sample_size"]

    def say(self, text: str) -> None:
        """Print one line about traffic when running in the foreground."""
        if self.echo is not None:
            now = time.time()
            stamp = time.strftime("%H:%M:%S", time.localtime(now))
            self.echo(f"{stamp}.{int(now % 1 * 1000):03d} {text}")

    def reset(self) -> None:
        """Forget recorded messages, stats and queued failures; restart the seeded sequence."""
        self.recorder.reset()
        self.stats = dict.fromkeys(self.stat_keys, 0)
        self.faults.clear()
        self.faults.reseed(self.options["seed"])

    # Control ----------------------------------------------------------------------------------

    def parse_fail_next(self, args: Mapping[str, Any]) -> Any:
        """Turn ``fail_next`` arguments into the outcome to queue."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Describe the running server for the caller."""
        return {"name": self.name, "host": LOCALHOST, "port": self.port}

    def command(self, name: str, args: Mapping[str, Any]) -> bytes:
        """Run one control command and return its JSON-encoded result."""
        if name == "counts":
            return dumps(self.recorder.counts)
        if name == "stats":
            return dumps({**self.stats, "pending_failures": self.faults.pending})
        if name == "messages":
            limit = args.get("limit")
            return self.recorder.messages_json(
                int(args.get("offset", 0)), None if limit is None else int(limit)
            )
        if name == "duplicates":
            return dumps(self.recorder.duplicates())
        if name == "configure":
            self.configure(args)
            return dumps(self.public_options())
        if name == "options":
            return dumps(self.public_options())
        if name == "fail_next":
            count = non_negative_int(args.get("count", 1))
            self.faults.force(count, self.parse_fail_next(args))
            return dumps(self.faults.pending)
        if name == "reset":
            self.reset()
            return b"null"
        if name in ("info", "ping"):
            return dumps(self.info())
        raise ValueError(f"unknown command {name!r}")

    def public_options(self) -> dict[str, Any]:
        """Return the current options in JSON-friendly form."""
        return {
            name: sorted(value) if isinstance(value, frozenset) else value
            for name, value in self.options.items()
        }

    def handle_control_http(self, request: Request) -> Response:
        """Answer ``/_fake/<command>``: GET takes query arguments, POST a JSON object."""
        name = request.path.removeprefix("/_fake/").strip("/")
        try:
            args: dict[str, Any] = dict(request.query_args())
            if request.body:
                body = json.loads(request.body)
                if not isinstance(body, dict):
                    raise ValueError("control body must be a JSON object")
                args.update(body)
            return Response(200, self.command(name, args))
        except (ValueError, TypeError, KeyError) as exc:
            return Response(400, dumps({"error": str(exc), "type": type(exc).__name__}))

    async def start(self, port: int) -> None:
        """Start listening on 127.0.0.1:``port`` and set ``self.port``."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop listening and close client connections."""
        raise NotImplementedError

    def banner(self) -> str:
        """Return the line printed when the server starts in the foreground."""
        return f"{self.name} listening on {LOCALHOST}:{self.port}"

    # Command line -----------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the command line options shared by every fake."""
        parser.add_argument("--seed", type=int, default=0, help="seed for random faults")
        parser.add_argument(
            "--no-bodies",
            dest="record_bodies",
            action="store_false",
            help="record ids, recipients and metadata only (for long runs)",
        )

    @classmethod
    def options_from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        """Pick this fake's options out of parsed command line arguments."""
        return {
            name: getattr(args, name)
            for name in cls.option_spec
            if getattr(args, name, None) is not None
        }
