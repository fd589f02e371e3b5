"""Signs of life of the background processes, kept in Redis: each worker's, and the sweep's.

Read by /healthz (operations/health.py) and the operator's page of workers and queues, so that
neither has to ask a worker anything while someone waits: a worker writes its heartbeat from
its own timer (WorkerHeartbeatStep, config/celery_app.py), and the sweep that beat starts
writes when it last ran (mailings.sending.tasks.mailing_sweep_task).

Times are the writer's wall clock (`time.time()`): machines that share one broker are assumed
to keep their clocks by NTP, as TLS and the ESPs' signatures need anyway.
"""

import json
import logging
import time
from dataclasses import dataclass

from celery import bootsteps
from django.conf import settings
from redis.exceptions import RedisError

from config.redis import redis_client

logger = logging.getLogger(__name__)

WORKERS_KEY = "rally:heartbeat:workers"
SWEEP_KEY = "rally:heartbeat:sweep"
# A worker not heard from for this long is dropped from the list: it was stopped by kill -9 or
# its machine went away, and a day is long enough for an operator to have seen it missing.
FORGET_WORKER_AFTER_SECONDS = 24 * 3600


@dataclass(frozen=True)
class WorkerHeartbeat:
    """A worker's latest heartbeat: who it is, which queues it serves, how long ago it beat."""

    worker: str
    queues: tuple[str, ...]
    age_seconds: float

    @property
    def alive(self) -> bool:
        return self.age_seconds <= settings.RALLY_HEALTH_WORKER_MAX_AGE_SECONDS


def worker_heartbeat_record(*, worker: str, queues: list[str]) -> None:
    """Record that `worker` is alive now and serves `queues`; forget workers long silent."""
    now = time.time()
    client = redis_client()
    client.hset(WORKERS_KEY, worker, json.dumps({"at": now, "queues": sorted(queues)}))
    silent = [
        heartbeat.worker
        for heartbeat in worker_heartbeats()
        if heartbeat.age_seconds > FORGET_WORKER_AFTER_SECONDS
    ]
    if silent:
        client.hdel(WORKERS_KEY, *silent)


def worker_heartbeat_forget(*, worker: str) -> None:
    """Remove a worker that is shutting down cleanly: it is gone, not late."""
    redis_client().hdel(WORKERS_KEY, worker)


def worker_heartbeats() -> list[WorkerHeartbeat]:
    """Return every worker's latest heartbeat, freshest first."""
    now = time.time()
    heartbeats = []
    for worker, value in redis_client().hgetall(WORKERS_KEY).items():
        try:
            beat = json.loads(value)
            at, queues = float(beat["at"]), tuple(str(queue) for queue in beat["queues"])
        except (ValueError, KeyError, TypeError):
            continue  # not written by worker_heartbeat_record: nothing to say about it
        heartbeats.append(
            WorkerHeartbeat(
                worker=worker.decode(errors="replace"),
                queues=queues,
                age_seconds=max(0.0, now - at),
            )
        )
    return sorted(heartbeats, key=lambda heartbeat: heartbeat.age_seconds)


def sweep_run_record() -> None:
    """Record that the periodic sweep has just finished a run."""
    redis_client().set(SWEEP_KEY, str(time.time()))


def sweep_last_run_age() -> float | None:
    """Return how many seconds ago the sweep last finished, or None if it never did."""
    value = redis_client().get(SWEEP_KEY)
    if value is None:
        return None
    try:
        return max(0.0, time.time() - float(value))
    except ValueError:
        return None


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """A worker bootstep: record the worker's heartbeat at start, then every few seconds.

    It runs on the worker's own timer in its main process, so the heartbeat says the process
    is up and reaches Redis, whether or not its pool is busy: a long batch does not make a
    worker look dead. Registered in config/celery_app.py.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer_entry = None

    def start(self, parent):
        self.beat(parent)
        self.timer_entry = parent.timer.call_repeatedly(
            settings.RALLY_WORKER_HEARTBEAT_SECONDS, self.beat, (parent,), priority=10
        )

    def stop(self, parent):
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        try:
            worker_heartbeat_forget(worker=parent.hostname)
        except RedisError:
            logger.warning("Could not remove this worker's heartbeat: Redis is unreachable")

    def beat(self, parent):
        try:
            worker_heartbeat_record(
                worker=parent.hostname, queues=list(parent.app.amqp.queues.consume_from)
            )
        except RedisError:
            # The next beat tries again; /healthz reports the worker once its heartbeat is late.
            logger.warning("Could not record this worker's heartbeat: Redis is unreachable")
