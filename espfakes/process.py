"""Run a fake server in a child process and control it over the child's pipes.

Both ends of the control channel live here: ``serve_controlled`` in the child, next to the
asyncio server, and ``FakeServerProcess`` in the test or benchmark process, which starts the
child, sends it control commands and tears it down.

The server runs in its own process so that it never competes for the GIL with the code under
test. Control travels over the child's stdin/stdout pipes: the first line in carries the
options, then each command is one JSON line, ``{"cmd": ..., "args": {...}}``. Each reply is a
JSON header line, ``{"ok": true, "encoding": "json", "sizes": [n]}``, followed by payloads of
those sizes (JSON, or recipient counts packed compactly). Pipes keep the channel private to the
caller, and when the caller dies the child sees end-of-file and exits, so a crashed test run
leaves no server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from espfakes.base import LOCALHOST, FakeApp
from espfakes.encoding import decode_counts, dumps, encode_counts

# Commands are single lines; a configure() may carry many addresses.
_CONTROL_LINE_LIMIT = 1 << 28
_PIPE_BYTES = 1 << 20
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


# --- child side --------------------------------------------------------------------------------


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


async def serve_controlled(app_cls: type[FakeApp], port: int) -> int:
    """Serve ``app_cls`` on ``port`` and answer commands until stdin ends; return the status."""
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
