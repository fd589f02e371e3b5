"""The one Redis client of a process, for rate limits, counters and the send queue's state."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects, so one client per process is safe under
    # Celery's prefork pool and gunicorn's workers. Short timeouts: a page never hangs on Redis.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
    )
