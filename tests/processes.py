"""Helpers for end-to-end tests: real worker processes on the test DB, an empty broker, waiting."""

import os
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
