"""Helpers for end-to-end tests: real worker processes on the test DB, an empty broker, waiting."""

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import redis
from django.conf import settings

from bench.worker_processes import WorkerProcess, start_celery_worker


def purge_test_redis() -> None:
    """Empty the test Redis database, so no task left by an earlier run reaches a new worker."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def wait_for(condition, *, timeout: float, message, interval: float = 0.05):
    """Poll `condition` until it returns something truthy; fail with `message` at the deadline.

    `message` may be a callable, to describe the state at the deadline (e.g. a worker's log).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = message() if callable(message) else message
            raise AssertionError(f"Timed out after {timeout}s: {detail}")
        time.sleep(interval)


def child_pids(pid: int) -> list[int]:
    """Return the processes whose parent is `pid`, oldest first (Linux /proc)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:  # `pid` is gone: so are its children, or they have a new parent
        return []
    return sorted(int(child) for child in children)


_worker_count = 0


def start_test_worker(
    *, env: dict[str, str], log_path: Path, beat_schedule: Path | None = None
) -> WorkerProcess:
    """Start a worker on the test database and test Redis, with the test settings."""
    global _worker_count
    _worker_count += 1
    return start_celery_worker(
        name=f"test{_worker_count}-{os.getpid()}",
        env=env,
        log_path=log_path,
        beat_schedule=beat_schedule,
        settings_module="config.settings.test",
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of a test's own, without persistence: killed, it forgets everything.

    For faults the shared test Redis must not suffer. `kill()` then `start()` is a Redis that
    crashed and came back empty, on the same port, so clients reconnect to the same URL.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        log = (self.directory / f"redis-{self.port}.log").open("a")
        self.process = subprocess.Popen(  # noqa: S603 -- a fixed command, our own arguments
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(
            lambda: self._answers(client),
            timeout=20,
            message=lambda: f"redis-server on port {self.port} did not start",
        )
        return self

    def kill(self) -> None:
        """Kill -9: queued tasks, rate buckets and counters are gone with it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


@contextlib.contextmanager
def broker_of_this_process(url: str):
    """Point this process' Celery app at another broker while the block runs.

    Tasks a test queues (`mailing_send` queues the snapshot) then reach the workers it started
    on that broker. Celery reads the broker URL into a connection pool made on first use: the
    app's pools are dropped so the next task opens a connection to `url`, and again on the way
    out.
    """
    from config.celery_app import app

    def use(broker_url: str) -> None:
        # kombu keeps one pool per broker for the whole process: the app's own pools are let go,
        # and the broker's pool is found again (still open) when the app returns to it.
        app.conf.broker_url = broker_url
        app._pool = None
        app.amqp._producer_pool = None

    before = app.conf.broker_url
    use(url)
    try:
        yield
    finally:
        app.pool.force_close_all()  # the pool of `url`: no test uses that broker again
        use(before)
