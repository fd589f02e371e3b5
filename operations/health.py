"""The checks behind /healthz: the database, Redis, a worker's heartbeat, beat's last run.

Each is a django-health-check check. Their messages go to the log only: /healthz shows each
check's name and whether it passed (operations/healthz.py), nothing an outsider could use.
"""

import dataclasses
import datetime

from django.conf import settings
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from config.heartbeats import sweep_last_run_age, worker_heartbeats

# A check that cannot answer within this budget fails, so /healthz answers within it too (the
# checks run at once). Under a load balancer's usual probe timeout of 5 s.
CHECK_TIMEOUT = datetime.timedelta(seconds=2)


@dataclasses.dataclass
class DatabaseCheck(Database):
    """SELECT 1 on the default database, on a connection of its own."""

    timeout = CHECK_TIMEOUT


@dataclasses.dataclass
class RedisCheck(Redis):
    """PING the Redis that is both the broker and the store of counters and heartbeats."""

    timeout = CHECK_TIMEOUT
    client_factory: object = dataclasses.field(
        repr=False,
        default=lambda: AsyncRedis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=CHECK_TIMEOUT.total_seconds(),
            socket_timeout=CHECK_TIMEOUT.total_seconds(),
        ),
    )

    def __repr__(self) -> str:
        # The library's names the host and port; the log needs no more than which check.
        return "RedisCheck()"


@dataclasses.dataclass
class WorkerHeartbeatCheck(HealthCheck):
    """Pass when every queue has a worker whose heartbeat is recent (config/heartbeats.py).

    Read from Redis, never asked of a worker while /healthz waits: a busy or distant worker
    cannot make the probe slow. `age_seconds` is the freshest heartbeat's age, or None.
    """

    timeout = CHECK_TIMEOUT
    age_seconds: float | None = dataclasses.field(default=None, init=False, repr=False)

    def run(self) -> None:
        try:
            heartbeats = worker_heartbeats()
        except RedisError as error:
            raise ServiceUnavailable("Redis unreachable: no heartbeat to read") from error
        if heartbeats:
            self.age_seconds = heartbeats[0].age_seconds
        served = {
            queue for heartbeat in heartbeats if heartbeat.alive for queue in heartbeat.queues
        }
        if not served:
            raise ServiceUnavailable("No worker's heartbeat is recent")
        unserved = sorted({queue.name for queue in settings.CELERY_TASK_QUEUES} - served)
        if unserved:
            raise ServiceUnavailable(f"No live worker serves {', '.join(unserved)}")


@dataclasses.dataclass
class BeatCheck(HealthCheck):
    """Pass when the sweep that beat starts finished recently. `age_seconds`: how long ago."""

    timeout = CHECK_TIMEOUT
    age_seconds: float | None = dataclasses.field(default=None, init=False, repr=False)

    def run(self) -> None:
        try:
            self.age_seconds = sweep_last_run_age()
        except RedisError as error:
            raise ServiceUnavailable("Redis unreachable: beat's last run unknown") from error
        if self.age_seconds is None:
            raise ServiceUnavailable("The sweep has not run since Redis was emptied")
        if self.age_seconds > settings.RALLY_HEALTH_BEAT_MAX_AGE_SECONDS:
            raise ServiceUnavailable(f"The sweep last ran {self.age_seconds:.0f} s ago")
