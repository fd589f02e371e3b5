"""Settings for a server: secrets and the sender's identity have no default, https is enforced.

The process refuses to start (ImproperlyConfigured, naming every missing variable at once)
rather than run with a demo sender, a demo postal address in every footer, or forgeable
webhooks. `manage.py check --deploy --settings=config.settings.production` is clean with the
defaults below; each setting that relaxes them says which warning it brings back.
"""

from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_settings

from .base import *  # noqa: F403
from .base import env

# What base.py would otherwise fill in with a laptop's demo values or leave empty. RALLY_SENDERS
# and the organisation's name and address are in every bulk message (its From and its footer).
REQUIRED_ENVIRONMENT = (
    "SECRET_KEY",
    "RALLY_SENDERS",
    "RALLY_ORGANISATION_NAME",
    "RALLY_ORGANISATION_ADDRESS",
    "ANYMAIL_WEBHOOK_SECRET",
    "RALLY_SUPPRESSION_HASH_KEY",
)
_missing = [name for name in REQUIRED_ENVIRONMENT if not env.str(name, default="").strip()]
if _missing:
    raise ImproperlyConfigured(
        "Rally's production settings need these environment variables, which are not set: "
        + ", ".join(_missing)
        + ". Each is described in .env.example."
    )

SECRET_KEY = env.str("SECRET_KEY")
# Webhooks forge-proof and erasures remembered under a key of their own.
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET")
ANYMAIL.setdefault("WEBHOOK_SECRET", ANYMAIL_WEBHOOK_SECRET)  # noqa: F405
RALLY_SUPPRESSION_HASH_KEY = env.str("RALLY_SUPPRESSION_HASH_KEY")

# --- https -------------------------------------------------------------------------------------
# TLS ends at the reverse proxy (or load balancer) in front of granian, which must set
# X-Forwarded-Proto and must overwrite one a client sent: Django trusts it to tell https.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Plain http is redirected to https. Off only where there is no https at all, such as the
# local compose demo (check --deploy then warns security.W008).
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# The orchestrator's health probe talks to the container directly, over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
# Browsers that once saw the site over https refuse plain http to it for this long (a year,
# the HSTS preload list's minimum; 0 turns HSTS off and check --deploy warns security.W004).
# Sent only on https responses. Subdomains and preload are on by default, as the check asks
# (W005, W021); turn either off when a subdomain of this host must stay reachable over http.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)

# --- Cookies -----------------------------------------------------------------------------------
# Session, CSRF and language cookies only over https (false only without https, as in the local
# compose demo; check --deploy then warns W012 and W016).
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The embed page lives in an iframe on campaigners' own sites, where our cookies are third-party.
# The CSRF cookie must still reach us from there: SameSite=None (which browsers accept only
# with Secure). Django's CSRF check never relied on SameSite; the token and Origin checks stand.
CSRF_COOKIE_SAMESITE = "None" if CSRF_COOKIE_SECURE else "Lax"

# --- Logs: JSON lines for the log collector, unless told otherwise (config/logs.py) ---------
RALLY_LOG_FORMAT = env.str("RALLY_LOG_FORMAT", default="") or "json"
LOGGING = logging_settings(log_format=RALLY_LOG_FORMAT, level=LOG_LEVEL)  # noqa: F405
# A webhook subscription may not point inside the server's own network (webhooks/urls.py).
RALLY_WEBHOOK_ALLOW_PRIVATE = env.bool("RALLY_WEBHOOK_ALLOW_PRIVATE", default=False)
