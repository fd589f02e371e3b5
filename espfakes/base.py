"""Share recording, fault injection and process control between the fake ESPs.

Server side (runs in the child process, next to the asyncio server):

* ``Recorder`` keeps accepted messages as compact JSON and counts them per recipient;
* ``Faults`` decides which requests fail, from an exact countdown or seeded random rates;
* ``FakeApp`` holds one fake's options, stats and control commands;
* ``run_main`` is the command line entry point, in the foreground or under control.

Caller side (runs in the test or benchmark process):

* ``FakeServerProcess`` starts the child, sends it control commands and tears it down.

The server runs in its own process so that it never competes for the GIL with the code under
test. Control travels over the child's stdin/stdout pipes: the first line in carries the
options, then each command is one JSON line, ``{"cmd": ..., "args": {...}}``. Each reply is a
JSON header line, ``{"ok": true, "encoding": "json", "sizes": [n]}``, followed by payloads of
those sizes (JSON, or recipient counts packed compactly). Pipes keep the channel private to the
caller, and when the caller dies the child sees end-of-file and exits, so a crashed test run
leaves no server behind.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import fcntl
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from espfakes._http import Request, Response, start_http_server

LOCALHOST = "127.0.0.1"
DEFAULT_SAMPLE_SIZE = 1000
# Commands are single lines; a configure() may carry many addresses.
_CONTROL_LINE_LIMIT = 1 << 28
_PIPE_BYTES = 1 << 20
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact ASCII JSON."""
    return json.dumps(obj, separators=(",", ":")).encode("ascii")


def encode_counts(counts: Mapping[str, int]) -> tuple[bytes, bytes] | None:
    """Pack recipient counts as newline-joined keys plus an array of 64-bit counts.

    A benchmark asks for the counts of every recipient it sent to, and JSON is slow both ways
    at that size; this packing is not (figures: docs/performance.md). Returns ``None`` when a
    key cannot be packed (contains a newline or an unpaired surrogate), and the caller falls
    back to JSON.
    """
    joined = "\n".join(counts)
    if joined.count("\n") != max(len(counts) - 1, 0):
        return None
    try:
        keys = joined.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    return keys, array.array("Q", counts.values()).tobytes()


def decode_counts(keys: bytes, values: bytes) -> dict[str, int]:
    """Unpack what ``encode_counts`` packed."""
    numbers = array.array("Q")
    numbers.frombytes(values)
    if not keys:
        return {}
    return dict(zip(keys.decode("utf-8", "surrogateescape").split("\n"), numbers, strict=True))


# --- option converters -------------------------------------------------------------------------


def rate(value: Any) -> float:
    """Convert ``value`` to a probability between 0 and 1."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"a rate must be between 0 and 1, got {value!r}")
    return number


def non_negative(value: Any) -> float:
    """Convert ``value`` to a float that is zero or more."""
    number = float(value)
    if number < 0:
        raise ValueError(f"expected a value >= 0, got {value!r}")
    return number


def non_negative_int(value: Any) -> int:
    """Convert ``value`` to an int that is zero or more."""
    number = int(value)
    if number < 0:
        raise ValueError(f"expected an integer >= 0, got {value!r}")
    return number


def boolean(value: Any) -> bool:
    """Convert ``value`` to a bool, reading "false", "no", "off" and "0" as false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def optional_int(value: Any) -> int | None:
    """Convert ``value`` to an int, keeping ``None``."""
    return None if value is None else int(value)


def address_list(addresses: Iterable[str]) -> list[str]:
    """Turn one address or an iterable of addresses into a JSON-friendly list."""
    return [addresses] if isinstance(addresses, str) else list(addresses)


def address_set(value: Any) -> frozenset[str]:
    """Convert one address or an iterable of addresses to a lower-cased frozenset."""
    if isinstance(value, str):
        value = [value]
    return frozenset(str(address).strip().lower() for address in value)


# --- server side -------------------------------------------------------------------------------


class Faults:
    """Decide which requests fail: an exact countdown first, then seeded random rates."""

    def __init__(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self._forced: deque[list[Any]] = deque()  # [remaining, outcome], served in order

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence so a run can be repeated exactly."""
        self.rng.seed(seed)

    def force(self, count: int, outcome: Any) -> None:
        """Queue ``outcome`` for the next ``count`` requests, after anything already queued."""
        if count > 0:
            self._forced.append([count, outcome])

    def clear(self) -> None:
        """Forget queued outcomes."""
        self._forced.clear()

    @property
    def pending(self) -> int:
        """Return how many queued outcomes remain."""
        return sum(remaining for remaining, _ in self._forced)

    def take_forced(self) -> Any:
        """Return the next queued outcome, or ``None``."""
        if not self._forced:
            return None
        slot = self._forced[0]
        slot[0] -= 1
        if slot[0] <= 0:
            self._forced.popleft()
        return slot[1]

    def pick(self, bands: Iterable[tuple[float, Any]]) -> Any:
        """Return the outcome whose band one random draw falls in, or ``None``.

        Bands are consecutive slices of [0, 1), so their rates are exact fractions of the
        requests. No random number is drawn when every rate is zero, which keeps a seeded
        sequence stable while faults are switched off.
        """
        bands = [(r, outcome) for r, outcome in bands if r > 0]
        if not bands:
            return None
        draw = self.rng.random()
        edge = 0.0
        for band_rate, outcome in bands:
            edge += band_rate
            if draw < edge:
                return outcome
        return None


class Recorder:
    """Keep accepted messages as compact JSON and count them per recipient.

    Entries live back to back in one ``bytearray`` (each followed by a comma) with their end
    offsets in an ``array``. That costs the JSON size plus 8 bytes per message, far less than
    a dict per message would (figures: docs/performance.md), and ``messages_json()`` becomes a
    single slice.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._log = bytearray()
        self._ends = array.array("Q")

    def reset(self) -> None:
        """Forget everything recorded."""
        self.counts = {}
        self._log = bytearray()
        self._ends = array.array("Q")

    def __len__(self) -> int:
        return len(self._ends)

    def add(self, recipients: Iterable[str], entry: Mapping[str, Any]) -> None:
        """Record one accepted message and count it once for each recipient."""
        counts = self.counts
        for recipient in recipients:
            counts[recipient] = counts.get(recipient, 0) + 1
        self._log += dumps(entry)
        self._log += b","
        self._ends.append(len(self._log))

    def messages_json(self, offset: int = 0, limit: int | None = None) -> bytes:
        """Return recorded messages ``offset`` to ``offset + limit`` as a JSON array."""
        total = len(self._ends)
        offset = max(0, min(offset, total))
        stop = total if limit is None else max(offset, min(total, offset + limit))
        if offset == stop:
            return b"[]"
        start = self._ends[offset - 1] if offset else 0
        end = self._ends[stop - 1] - 1  # drop the trailing comma
        return b"[" + self._log[start:end] + b"]"

    def duplicates(self) -> dict[str, int]:
        """Return the recipients counted more than once."""
        return {recipient: n for recipient, n in self.counts.items() if n > 1}


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


class ControlOnlyApp:
    """Serve only the ``/_fake/`` control endpoints of ``app`` over HTTP."""

    def __init__(self, app: FakeApp) -> None:
        self._app = app

    def delay_for(self, request: Request) -> float:
        """Answer control requests at once."""
        return 0.0

    def handle(self, request: Request) -> Response:
        """Route ``/_fake/`` to the app and refuse anything else."""
        if request.path.startswith("/_fake/"):
            return self._app.handle_control_http(request)
        return Response(404, b'{"error":"not found"}')

    def connection_opened(self) -> None:
        """Ignore control connections in the stats."""


def run_main(
    app_cls: type[FakeApp],
    argv: list[str] | None,
    *,
    description: str,
    default_port: int,
) -> int:
    """Run ``app_cls`` from the command line until interrupted; return the exit status."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {app_cls.__module__}", description=description
    )
    parser.add_argument("--port", type=int, default=default_port, help="port on 127.0.0.1")
    # Used by FakeServerProcess: read options and commands on stdin, reply on stdout.
    parser.add_argument("--control", action="store_true", help=argparse.SUPPRESS)
    app_cls.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.control:
        return asyncio.run(_serve_controlled(app_cls, args.port))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_foreground(app_cls, args))
    return 0


async def _serve_foreground(app_cls: type[FakeApp], args: argparse.Namespace) -> None:
    app = app_cls(app_cls.options_from_args(args), echo=lambda line: print(line, flush=True))
    await app.start(args.port)
    control = None
    if getattr(args, "control_port", None) is not None:
        control = await start_http_server(ControlOnlyApp(app), args.control_port)
        port = control.sockets[0].getsockname()[1]
        print(f"control endpoint: http://{LOCALHOST}:{port}/_fake/stats", flush=True)
    print(app.banner(), flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        if control is not None:
            control.close()
        await app.stop()
        print(f"stopped; stats: {json.dumps(app.stats)}", flush=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _send_frame(fd: int, header: Mapping[str, Any], *payload: bytes) -> None:
    """Write one reply: a JSON header line announcing the payload sizes, then the payloads."""
    sizes = [len(part) for part in payload]
    _write_all(fd, dumps({**header, "sizes": sizes}) + b"\n")
    for part in payload:
        _write_all(fd, part)


def _send_error(fd: int, exc: BaseException) -> None:
    _send_frame(fd, {"ok": False, "error": str(exc), "type": type(exc).__name__})


def _run_command(app: FakeApp, request: Mapping[str, Any]) -> tuple[str, tuple[bytes, ...]]:
    """Run a control command for the pipe; counts travel packed rather than as JSON."""
    if request["cmd"] == "counts":
        packed = encode_counts(app.recorder.counts)
        if packed is not None:
            return "counts", packed
    return "json", (app.command(request["cmd"], request.get("args") or {}),)


async def _serve_controlled(app_cls: type[FakeApp], port: int) -> int:
    # Keep the real stdout for replies and point fd 1 at stderr, so that a stray print()
    # anywhere in the child cannot corrupt the control channel.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    with contextlib.suppress(AttributeError, OSError):
        # Fewer, larger writes when a reply carries a million recipients (Linux only).
        fcntl.fcntl(reply_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    # Ctrl-C in a terminal reaches the whole process group; the caller decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CONTROL_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    first = await reader.readline()
    if not first:
        return 0
    try:
        app = app_cls(json.loads(first))
        await app.start(port)
    except Exception as exc:
        _send_error(reply_fd, exc)
        return 1
    _send_frame(reply_fd, {"ok": True, "encoding": "json"}, dumps(app.info()))
    try:
        while line := await reader.readline():
            try:
                encoding, payload = _run_command(app, json.loads(line))
            except Exception as exc:
                _send_error(reply_fd, exc)
            else:
                _send_frame(reply_fd, {"ok": True, "encoding": encoding}, *payload)
    finally:
        await app.stop()
    return 0


# --- caller side -------------------------------------------------------------------------------

_REMOTE_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "NotImplementedError": NotImplementedError,
}


def _reap(proc: subprocess.Popen[bytes], owner_pid: int) -> None:
    """Kill a child left running when its owner is garbage collected or the interpreter exits."""
    if os.getpid() != owner_pid:
        return  # a forked copy of the owner (e.g. a prefork worker) must not kill the server
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class FakeServerProcess:
    """Run one fake server in a child process and control it from the calling process.

    Use it as a context manager, or call ``start()`` and ``stop()``. Every method is safe to
    call from several threads; calls are serialised over one pipe.
    """

    module: ClassVar[str] = ""
    start_timeout: ClassVar[float] = 30.0
    call_timeout: ClassVar[float] = 120.0

    def __init__(self, *, port: int = 0, **options: Any) -> None:
        self._requested_port = port
        self._options = options
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._info: dict[str, Any] = {}

    # Lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server process and wait until it listens."""
        if self._proc is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PROJECT_ROOT, env.get("PYTHONPATH")]))
        # -P: do not put the caller's working directory on the child's sys.path.
        command = [sys.executable, "-P", "-m", self.module, "--control"]
        command += ["--port", str(self._requested_port)]
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=_PIPE_BYTES
        )
        self._proc = proc
        self._owner_pid = os.getpid()
        self._finalizer = weakref.finalize(self, _reap, proc, self._owner_pid)
        try:
            with self._lock:
                self._send(self._options)
                self._info = self._receive(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server process; waits for it, killing it if it does not exit promptly."""
        proc, self._proc = self._proc, None
        if proc is None or os.getpid() != self._owner_pid:
            return  # in a forked copy of the owner, leave the owner's server alone
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the child exits on end-of-file
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._finalizer is not None:
            self._finalizer()  # closes the pipes; a no-op kill now that the child is gone

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Tell whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Return the server process id, or ``None`` when stopped."""
        return None if self._proc is None else self._proc.pid

    @property
    def host(self) -> str:
        """Return the address the server listens on (always 127.0.0.1)."""
        return LOCALHOST

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        if not self._info:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._info["port"])

    # Control ----------------------------------------------------------------------------------

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change options at runtime; return all current options."""
        return self._call("configure", **options)

    def options(self) -> dict[str, Any]:
        """Return the current options."""
        return self._call("options")

    def messages(self, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Return recorded messages in the order they were accepted."""
        return self._call("messages", offset=offset, limit=limit)

    def counts(self) -> dict[str, int]:
        """Return how many messages each recipient (lower-cased address) was sent."""
        return self._call("counts")

    def duplicates(self) -> dict[str, int]:
        """Return the recipients sent more than one message, with their counts."""
        return self._call("duplicates")

    def missing(self, expected: Iterable[str]) -> list[str]:
        """Return the addresses in ``expected`` that were never sent a message."""
        counts = self.counts()
        return [address for address in expected if address.strip().lower() not in counts]

    def stats(self) -> dict[str, int]:
        """Return traffic counters (see the subclass for the keys)."""
        return self._call("stats")

    def reset(self) -> None:
        """Forget recorded messages, stats and queued failures; keep options."""
        self._call("reset")

    def wait_until(
        self,
        predicate: Callable[[Self], bool],
        timeout: float = 10.0,
        interval: float = 0.01,
    ) -> None:
        """Poll ``predicate(self)`` until it is true; raise ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s; stats={self.stats()}")
            time.sleep(interval)

    def wait_for_accepted(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` messages have been accepted."""
        self.wait_until(lambda fake: fake.stats()["accepted"] >= count, timeout)

    def _call(self, command: str, **args: Any) -> Any:
        with self._lock:
            if self._proc is None:
                raise RuntimeError(f"{type(self).__name__} is not running")
            self._send({"cmd": command, "args": args})
            return self._receive(self.call_timeout)

    def _send(self, payload: Any) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(dumps(payload) + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None

    def _receive(self, timeout: float) -> Any:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        # Replies strictly alternate with commands, so nothing is ever left in stdout's buffer
        # and select() on the raw descriptor is reliable.
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            self._kill()
            raise TimeoutError(f"{type(self).__name__} did not answer within {timeout} s")
        line = stdout.readline()
        if not line:
            raise self._died()
        header = json.loads(line)
        payload = []
        for size in header["sizes"]:
            part = stdout.read(size)
            if len(part) != size:
                raise self._died()
            payload.append(part)
        if not header["ok"]:
            raise _REMOTE_ERRORS.get(header["type"], RuntimeError)(header["error"])
        if header["encoding"] == "counts":
            return decode_counts(*payload)
        return json.loads(payload[0])

    def _died(self) -> RuntimeError:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return RuntimeError(f"{type(self).__name__} server process exited (status {code})")

    def _kill(self) -> None:
        # A timed-out reply would arrive as the answer to the next command: the channel is
        # unusable, so end the child rather than leave it half-working.
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
