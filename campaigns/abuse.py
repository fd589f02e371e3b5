"""Keep bots and floods off the sign form: rate limits in Redis and an optional captcha.

The honeypot lives in the form (forms.SignatureForm.is_bot). Limits are windows in Redis,
shared by every web process: per client IP (a flood from one machine) and per email (someone
signing or resending for one address over and over). A limit of 0 switches it off.
"""

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache

import redis
import requests
from django.conf import settings

from config.redis import redis_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    scope: str
    limit: int
    window_seconds: int


def ip_limit() -> RateLimit:
    return RateLimit("ip", settings.RALLY_SIGN_LIMIT_PER_IP, 60)


def email_limit() -> RateLimit:
    return RateLimit("email", settings.RALLY_SIGN_LIMIT_PER_EMAIL, 3600)


# One attempt in a window: the window opens at the first attempt and its key expires with it.
# A script, so the two commands are one (no key is left without its expiry) and one command to
# send and parse, cheaper than a MULTI/EXEC pipeline; this runs for every signature
# (docs/performance.md, "Rate limits").
COUNT_ATTEMPT_LUA = """
local attempts = redis.call('INCR', KEYS[1])
if attempts == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return attempts
"""


@lru_cache(maxsize=1)
def _count_attempt():
    return redis_client().register_script(COUNT_ATTEMPT_LUA)


def rate_limit_hit(rate: RateLimit, identity: str) -> bool:
    """Count one attempt for `identity`; return True when it is over the limit.

    Identities are hashed: Redis never holds an email or an IP address in clear. When Redis is
    down the form stays open; signing matters more than limiting.
    """
    if rate.limit <= 0 or not identity:
        return False
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:{identity}".encode()).hexdigest()[:32]
    key = f"rally:limit:{rate.scope}:{digest}"
    try:
        attempts = _count_attempt()(keys=[key], args=[rate.window_seconds])
    except redis.RedisError as error:
        logger.warning("Rate limit not checked, Redis unavailable: %s", error)
        return False
    return attempts > rate.limit


def client_ip(request) -> str:
    """Return the client's address: REMOTE_ADDR, or the header a trusted proxy sets."""
    header = settings.RALLY_CLIENT_IP_HEADER
    if header:
        # e.g. X-Forwarded-For: "client, proxy1": the proxy we trust appended the last hop.
        value = request.META.get(header, "").split(",")[-1].strip()
        if value:
            return value
    return request.META.get("REMOTE_ADDR", "")


# --- Captcha (optional) ---------------------------------------------------------------------

CAPTCHA_PROVIDERS = {
    # provider: (the form field its widget posts, its script, its verify URL)
    "turnstile": (
        "cf-turnstile-response",
        "https://challenges.cloudflare.com/turnstile/v0/api.js",
        "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    ),
    "hcaptcha": (
        "h-captcha-response",
        "https://js.hcaptcha.com/1/api.js",
        "https://api.hcaptcha.com/siteverify",
    ),
}


def captcha_enabled() -> bool:
    return settings.RALLY_CAPTCHA_PROVIDER in CAPTCHA_PROVIDERS


def captcha_widget() -> dict | None:
    """Return what the template needs to show the captcha, or None when it is off."""
    if not captcha_enabled():
        return None
    provider = settings.RALLY_CAPTCHA_PROVIDER
    _field, script, _verify = CAPTCHA_PROVIDERS[provider]
    css_class = "cf-turnstile" if provider == "turnstile" else "h-captcha"
    return {"script": script, "css_class": css_class, "site_key": settings.RALLY_CAPTCHA_SITE_KEY}


def captcha_passed(request) -> bool:
    """Ask the captcha provider whether this request's answer is good (True when it is off).

    Both Turnstile and hCaptcha take the same siteverify form post and answer {"success": …}.
    A provider that cannot be reached fails closed: the form says to try again.
    """
    if not captcha_enabled():
        return True
    field, _script, verify_url = CAPTCHA_PROVIDERS[settings.RALLY_CAPTCHA_PROVIDER]
    answer = request.POST.get(field, "")
    if not answer or len(answer) > 4096:
        return False
    try:
        response = requests.post(
            settings.RALLY_CAPTCHA_VERIFY_URL or verify_url,
            data={
                "secret": settings.RALLY_CAPTCHA_SECRET_KEY,
                "response": answer,
                "remoteip": client_ip(request),
            },
            timeout=5,
        )
        return bool(response.json().get("success"))
    except (requests.RequestException, ValueError) as error:
        logger.warning("Captcha verification failed: %s", error)
        return False
