"""Start and stop real processes for end-to-end tests: Celery workers that share our test DB."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """Return a DATABASE_URL naming the database this test session runs on."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{db['NAME']}"


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


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def kill(self) -> None:
        """Kill the worker and its pool children at once (kill -9), as a crash would."""
        os.killpg(self.process.pid, 9)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


_worker_count = 0


def start_celery_worker(
    *,
    env: dict[str, str],
    log_path: Path,
    concurrency: int = 2,
    beat_schedule: Path | None = None,
) -> WorkerProcess:
    """Start a `celery worker` process serving every queue, wired to the test DB and Redis."""
    global _worker_count
    _worker_count += 1
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **env,
    }
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config.celery_app",
            "worker",
            "-Q",
            "transactional,bulk,tracking",
            "--pool",
            "prefork",
            "-c",
            str(concurrency),
            "-n",
            f"test{_worker_count}-{os.getpid()}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            *(["--beat", "--schedule", str(beat_schedule)] if beat_schedule else []),
        ],  # fmt: skip
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group, so a test can kill the worker and its pool children together.
        start_new_session=True,
    )
    return WorkerProcess(process=process, log_path=log_path)
