"""Drive wrk with a benchmark's Lua script (sign.lua, webhooks.lua) and read what it reports."""

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from django.core.management.base import CommandError

LUA_SCRIPT = Path(__file__).resolve().parent / "sign.lua"
# A printed line of sign.lua; wrk is stopped once every thread has printed it.
THREAD_FINISHED = "bench: thread finished"


def run_wrk(
    wrk: str,
    url: str,
    *,
    mode: str,
    requests: int,
    concurrency: int,
    timeout: float,
    run: str = "",
    csrf_cookie: str = "",
    csrf_token: str = "",
    returning: float = 0.0,
    supporters: int = 0,
    script: Path = LUA_SCRIPT,
    extra_env: dict[str, str] | None = None,
) -> dict:
    """Run wrk with `script` until every thread has had its answers; return its JSON summary.

    The script is sign.lua unless given; another script follows its protocol (the thread
    finished line, the parking port, one JSON line from done()) and reads `extra_env`.
    """
    # Where finished threads park their last connection (see finish() in sign.lua): the kernel
    # completes the handshakes and nobody ever reads them.
    with socket.create_server(("127.0.0.1", 0), backlog=1024) as park:
        env = {
            **os.environ,
            "BENCH_MODE": mode,
            "BENCH_REQUESTS": str(requests),
            "BENCH_THREADS": str(concurrency),
            "BENCH_RUN": run,
            "BENCH_CSRF_COOKIE": csrf_cookie,
            "BENCH_CSRF_TOKEN": csrf_token,
            "BENCH_RETURNING": str(returning),
            "BENCH_SUPPORTERS": str(supporters),
            "BENCH_PARK_PORT": str(park.getsockname()[1]),
            **(extra_env or {}),
        }
        # One connection per thread, so that sign.lua can time each request (see there). wrk
        # is duration-based: the duration is only a ceiling, it is stopped once done.
        command = [
            wrk, "-t", str(concurrency), "-c", str(concurrency), "-d", f"{int(timeout)}s",
            "--timeout", "30s", "-s", str(script), url,
        ]  # fmt: skip
        process = subprocess.Popen(  # noqa: S603 -- wrk from PATH with our arguments
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        stdout, stderr = _supervise_wrk(process, threads=concurrency, timeout=timeout)
    try:
        return parse_wrk_output(stdout)
    except CommandError as error:
        raise CommandError(
            f"{error}\nwrk stdout:\n{stdout[-2000:]}\nwrk stderr:\n{stderr[-2000:]}"
        ) from None


def _supervise_wrk(process: subprocess.Popen, *, threads: int, timeout: float) -> tuple[str, str]:
    """Stop wrk (SIGINT: it then reports) once every thread has finished; return its output."""
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []

    def read_stdout():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_stdout, daemon=True).start()
    read_stderr = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    read_stderr.start()
    output, finished, interrupted_at = [], 0, None
    deadline = time.monotonic() + timeout + 10
    while True:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            line = ""
        if line is None:
            break
        output.append(line)
        finished += int(line.strip() == THREAD_FINISHED)
        now = time.monotonic()
        # wrk ignores SIGINT until its threads run, so repeat it until wrk is gone.
        if (finished >= threads or now > deadline) and (
            interrupted_at is None or now - interrupted_at > 0.5
        ):
            process.send_signal(signal.SIGINT)
            interrupted_at = now
        if interrupted_at is not None and now - interrupted_at > 60:
            process.kill()
    process.wait()
    read_stderr.join(timeout=5)
    return "".join(output), "".join(errors)


def parse_wrk_output(stdout: str) -> dict:
    """Return the JSON object sign.lua's done() printed: the last line that is one."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise CommandError("wrk printed no summary (did sign.lua fail?).")


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else round(microseconds / 1000, 2)


def _per_second(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def summarise(signing: dict, page: dict | None, *, signatures_in_db: int) -> dict:
    """Combine the wrk summaries and the row count into the benchmark's result.

    Lost signatures were acknowledged (the thank-you redirect) but are not in the table;
    unacknowledged ones are in the table although their request did not end in that redirect
    (an error after the commit, a dropped connection).
    """
    ok = signing["ok"]
    latency = signing.get("latency_us", {})
    page_latency = (page or {}).get("latency_us", {})
    return {
        "requests": signing["requests"],
        "ok": ok,
        "errors": signing["requests"] - ok,
        "signatures_in_db": signatures_in_db,
        "lost": max(0, ok - signatures_in_db),
        "unacknowledged": max(0, signatures_in_db - ok),
        "req_per_s": _per_second(signing["answered"], signing["seconds"]),
        "signatures_per_s": _per_second(signatures_in_db, signing["seconds"]),
        "p50_ms": _ms(latency.get("p50")),
        "p95_ms": _ms(latency.get("p95")),
        "p99_ms": _ms(latency.get("p99")),
        "max_ms": _ms(latency.get("max")),
        "seconds": round(signing["seconds"], 2),
        "errors_by_class": {
            "status_4xx": signing["status_4xx"],
            "status_5xx": signing["status_5xx"],
            "status_other": signing["status_other"],
            "no_answer": signing["requests"] - signing["answered"],
            "socket": signing["socket_errors"],
        },
        "get_ok": page["ok"] if page else None,
        "get_p95_ms": _ms(page_latency.get("p95")),
        "get_req_per_s": _per_second(page["answered"], page["seconds"]) if page else None,
    }
