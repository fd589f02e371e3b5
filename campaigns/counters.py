"""Live signature counts that take a surge: a Redis counter, reconciled from the table.

UK Parliament's petitions site fell over at ~33 signatures/s because every signature updated
one counter row. Here no row is locked per signature: the table is the truth, and Redis holds
its count. A new counted signature bumps the Redis value after its transaction commits (one
command, cheaper than queueing a task to do it); a missing value is recounted from the table;
beat reconciles every count with the table when no signature arrived during the recount.
"""

import contextlib
import logging

import redis

from config.redis import redis_client

from .models import Petition, Signature

logger = logging.getLogger(__name__)

# Only bump a count Redis already holds: a missing one is recounted, which includes this row.
INCREMENT_IF_PRESENT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return nil
"""


def _count_key(petition_id: int) -> str:
    return f"rally:petition:{petition_id}:signatures"


def counted_signatures(petition_id: int):
    """The signatures a public count counts: confirmed ones (unconfirmed are shown apart)."""
    return Signature.objects.filter(petition_id=petition_id, confirmed_at__isnull=False)


def petition_count(petition_id: int) -> int:
    """Return the public signature count of a petition, from Redis when it holds it."""
    try:
        cached = redis_client().get(_count_key(petition_id))
    except redis.RedisError as error:
        logger.warning("Redis unavailable for counts, counting the table: %s", error)
        return counted_signatures(petition_id).count()
    if cached is not None:
        return int(cached)
    count = counted_signatures(petition_id).count()
    # NX: a value set meanwhile by another request is as fresh. A signature committed during
    # the count and not bumped (there was no value yet) is caught up by the next reconcile.
    with contextlib.suppress(redis.RedisError):
        redis_client().set(_count_key(petition_id), count, nx=True)
    return count


def petition_count_add(petition_id: int, amount: int = 1) -> None:
    """Add newly counted signatures, once their transaction has committed."""
    try:
        redis_client().eval(INCREMENT_IF_PRESENT_LUA, 1, _count_key(petition_id), amount)
    except redis.RedisError as error:
        # The signature is safe in the table; beat's reconcile brings the count back in line.
        logger.warning("Could not bump the count of petition %s: %s", petition_id, error)


def petition_counts_reconcile() -> int:
    """Set every open petition's Redis count from the table; return how many were corrected.

    A count that changed while the table was being counted is left for the next run: the
    increments already in it are exact, and overwriting could drop one.
    """
    client = redis_client()
    corrected = 0
    open_ids = list(Petition.objects.filter(is_open=True).values_list("pk", flat=True))
    for petition_id in open_ids:
        key = _count_key(petition_id)
        with client.pipeline() as pipe:
            try:
                pipe.watch(key)
                held = pipe.get(key)
                count = counted_signatures(petition_id).count()
                if held is not None and int(held) == count:
                    continue
                pipe.multi()
                pipe.set(key, count)
                pipe.execute()
                corrected += 1
            except redis.WatchError:
                continue  # signatures arrived meanwhile: next time
    return corrected
