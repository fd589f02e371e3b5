"""The one Redis client of a process, for rate limits, counters and the send queue's state."""

from functools import lru_cache

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects, so one client per process is safe under
    # Celery's prefork pool and gunicorn's workers. Short timeouts: a page never hangs on Redis.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
    )


@receiver(setting_changed)
def _forget_client_of_old_url(*, setting, **kwargs) -> None:
    # A test that points REDIS_URL elsewhere (an unreachable port) gets a client for it.
    if setting == "REDIS_URL":
        redis_client.cache_clear()
