"""Keep to the ESP's limits: a rate limit shared by every worker, and a circuit breaker.

Both live in Redis so that every worker process on every machine sees the same numbers. Redis
forgetting them is harmless: the bucket refills and the breaker's window starts again.
"""

import hashlib
import time

from django.conf import settings

from config.redis import redis_client

# A token bucket. Redis' own clock is the only clock, so machines with skewed clocks agree.
# Returns the tokens granted (up to the number asked) and the seconds until the next is due.
RATE_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
local wait = 0
if granted < wanted then wait = (1 - tokens) / rate end
return {granted, tostring(wait)}
"""

# Attempts and failures per mailing, in buckets of BREAKER_BUCKET_SECONDS.
BREAKER_BUCKET_SECONDS = 10


def esp_account_key() -> str:
    """Name the ESP account the configured email backend sends through, without its secrets."""
    account = repr(
        (settings.EMAIL_BACKEND, settings.ANYMAIL, settings.EMAIL_HOST, settings.EMAIL_PORT)
    )
    return "rally:rate:" + hashlib.sha256(account.encode()).hexdigest()[:16]


class SendRateLimiter:
    """Hand out permission to send, at most `rate` messages a second across all workers.

    The bucket holds a tenth of a second's worth, so a burst never goes far past the rate.
    """

    def __init__(self, rate: float, *, key: str | None = None):
        self.rate = rate
        self.burst = max(1, int(rate / 10))
        self.key = key or esp_account_key()
        self._script = redis_client().register_script(RATE_BUCKET_LUA)

    def acquire(self, wanted: int) -> int:
        """Wait until at least one message may go; return how many (1 to `wanted`) may go now."""
        wanted = max(1, min(wanted, self.burst))
        while True:
            granted, wait = self._script(keys=[self.key], args=[self.rate, self.burst, wanted])
            if int(granted):
                return int(granted)
            # Waiting here is the point: it is how the ESP's contract is kept.
            time.sleep(float(wait))


class UnlimitedRate:
    """The limiter for an ESP without a contract rate (RALLY_SEND_RATE_PER_SECOND=0)."""

    def acquire(self, wanted: int) -> int:
        return wanted


def send_rate_limiter() -> SendRateLimiter | UnlimitedRate:
    rate = settings.RALLY_SEND_RATE_PER_SECOND
    return SendRateLimiter(rate) if rate > 0 else UnlimitedRate()


def breaker_record(*, mailing_id: int, attempts: int, failures: int) -> None:
    """Count a batch's send attempts and failures into the mailing's current window bucket."""
    if not attempts:
        return
    bucket = int(time.time() // BREAKER_BUCKET_SECONDS)
    key = f"rally:breaker:{mailing_id}:{bucket}"
    pipe = redis_client().pipeline()
    pipe.hincrby(key, "attempts", attempts)
    pipe.hincrby(key, "failures", failures)
    pipe.expire(key, settings.RALLY_BREAKER_WINDOW_SECONDS + BREAKER_BUCKET_SECONDS)
    pipe.execute()


def breaker_failure_rate(*, mailing_id: int) -> tuple[int, float]:
    """Return the attempts and failure rate of a mailing over the breaker's window."""
    now_bucket = int(time.time() // BREAKER_BUCKET_SECONDS)
    buckets = settings.RALLY_BREAKER_WINDOW_SECONDS // BREAKER_BUCKET_SECONDS
    pipe = redis_client().pipeline()
    for bucket in range(now_bucket - buckets + 1, now_bucket + 1):
        pipe.hmget(f"rally:breaker:{mailing_id}:{bucket}", "attempts", "failures")
    attempts = failures = 0
    for bucket_attempts, bucket_failures in pipe.execute():
        attempts += int(bucket_attempts or 0)
        failures += int(bucket_failures or 0)
    return attempts, (failures / attempts if attempts else 0.0)
