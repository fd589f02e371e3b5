"""Start Celery worker processes and measure them: used by `bench_send` and by the tests."""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from bench.proc_cpu import descendants

ROOT = Path(__file__).resolve().parent.parent


def current_database_url() -> str:
    """Return a DATABASE_URL naming the database this process is connected to."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{db['NAME']}"


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """Kill the worker and its pool children at once (kill -9), as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def redis_url_with_db(url: str, db: int) -> str:
    """Return a Redis URL naming database `db` instead of its own (or the default)."""
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


def start_celery_worker(
    *,
    name: str,
    env: dict[str, str],
    log_path: Path,
    concurrency: int = 2,
    pool: str = "prefork",
    beat_schedule: Path | None = None,
    settings_module: str | None = None,
) -> WorkerProcess:
    """Start a `celery worker` serving every queue, on this process' database and broker."""
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module or os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **env,
    }
    log = log_path.open("w")
    queues = ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES)
    command = [
        sys.executable, "worker.py", "-A", "config.celery_app", "worker",
        "-Q", queues, "--pool", pool, "-c", str(concurrency),
        "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        *(["--beat", "--schedule", str(beat_schedule)] if beat_schedule else []),
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 -- our own interpreter and arguments
        command,
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group, so the worker and its pool children can be killed together.
        start_new_session=True,
    )
    return WorkerProcess(process=process, log_path=log_path)


def process_tree_memory_mb(root_pids: list[int]) -> tuple[float, float]:
    """Return the RSS and PSS of processes and all their descendants, in MB (Linux /proc).

    RSS counts pages that prefork children share with their parent once per process; PSS
    divides each shared page among its sharers, so it sums to the memory really used.
    """
    rss_kb = pss_kb = 0
    for pid in descendants(root_pids):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss_kb += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss_kb += int(line.split()[1])
        except OSError:
            continue
    return rss_kb / 1024, pss_kb / 1024
