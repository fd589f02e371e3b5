"""Who is calling the API: the token of a request, its scope, and its rate limit.

A token is looked up once and then kept in the process for TOKEN_CACHE_SECONDS, so a request
costs no query for its token: a revoked token is refused by every process within that time.
"""

import logging
import threading
import time
from dataclasses import dataclass

from django.utils import timezone

from api.models import ApiToken, token_digest
from config.redis import redis_client

logger = logging.getLogger(__name__)

# How long a process trusts what it read of a token: the delay before a revocation is obeyed.
TOKEN_CACHE_SECONDS = 5.0
# How often a process writes a token's last_used_at: a column for people, not for accounting.
LAST_USED_WRITE_SECONDS = 60.0


@dataclass(frozen=True)
class Caller:
    """The token behind a request, as the views need it (no row, so it can be cached)."""

    token_id: int
    name: str
    scope: str

    @property
    def writes(self) -> bool:
        return self.scope in (ApiToken.Scope.WRITE, ApiToken.Scope.HELPERS)


# digest -> (Caller, or None for an unknown or revoked token; monotonic time it was read)
_known: dict[str, tuple[Caller | None, float]] = {}
# token id -> monotonic time this process last wrote its last_used_at
_last_used_written: dict[int, float] = {}
_lock = threading.Lock()


def caller_from_secret(secret: str) -> Caller | None:
    """Return the caller a secret stands for, or None if it is unknown or revoked."""
    digest = token_digest(secret)
    now = time.monotonic()
    cached = _known.get(digest)
    if cached is not None and now - cached[1] < TOKEN_CACHE_SECONDS:
        caller = cached[0]
    else:
        row = (
            ApiToken.objects.filter(digest=digest, revoked_at__isnull=True)
            .values_list("pk", "name", "scope")
            .first()
        )
        caller = Caller(token_id=row[0], name=row[1], scope=row[2]) if row else None
        with _lock:
            # Unknown secrets are cached too, so guessing costs the database nothing; the map
            # is cleared when it grows, which a flood of guesses would make it do.
            if len(_known) > 10_000:
                _known.clear()
            _known[digest] = (caller, now)
    if caller is not None:
        _note_use(caller.token_id, now)
    return caller


def _note_use(token_id: int, now: float) -> None:
    last = _last_used_written.get(token_id)
    if last is not None and now - last < LAST_USED_WRITE_SECONDS:
        return
    _last_used_written[token_id] = now
    ApiToken.objects.filter(pk=token_id).update(last_used_at=timezone.now())


def forget_tokens() -> None:
    """Drop what this process knows of tokens (for tests that revoke and retry at once)."""
    with _lock:
        _known.clear()
        _last_used_written.clear()


def rate_limit_wait(caller: Caller, *, per_minute: int) -> int:
    """Count one request of the caller; return 0 if allowed, else seconds until it may retry.

    A fixed window per token and minute in Redis: one round trip (INCR and EXPIRE together).
    If Redis does not answer, the request is let through: the limit protects Rally from a
    runaway script, and refusing every integrator while Redis restarts would be worse.
    """
    window = int(time.time()) // 60
    key = f"rally:api:rate:{caller.token_id}:{window}"
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
    except Exception:  # noqa: BLE001 - any Redis failure means "no limit known"
        logger.warning("api rate limit unavailable: Redis did not answer", exc_info=True)
        return 0
    if count <= per_minute:
        return 0
    return max(1, (window + 1) * 60 - int(time.time()))
