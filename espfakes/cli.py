"""Run a fake server from the command line, in the foreground or under a caller's control.

``python -m espfakes.postmark`` and ``python -m espfakes.smtp`` end up in ``run_main``, and so
does the child process a ``FakeServerProcess`` starts (with ``--control``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal

from espfakes._http import Request, Response, start_http_server
from espfakes.base import LOCALHOST, FakeApp
from espfakes.process import serve_controlled


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
    module: str,
    description: str,
    default_port: int,
) -> int:
    """Run ``app_cls`` from the command line until interrupted; return the exit status.

    ``module`` is what ``python -m`` runs, for the usage line: the app's own ``__module__`` is
    ``__main__`` there, or not the module that has the entry point.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--port", type=int, default=default_port, help="port on 127.0.0.1")
    # Used by FakeServerProcess: read options and commands on stdin, reply on stdout.
    parser.add_argument("--control", action="store_true", help=argparse.SUPPRESS)
    app_cls.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.control:
        return asyncio.run(serve_controlled(app_cls, args.port))
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
