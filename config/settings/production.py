"""Settings for a server: secrets have no default, cookies are secure."""

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.str("SECRET_KEY")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The embed page lives in an iframe on campaigners' own sites, where our cookies are third-party.
# The CSRF cookie must still reach us from there: SameSite=None (which browsers accept only
# with Secure). Django's CSRF check never relied on SameSite; the token and Origin checks stand.
CSRF_COOKIE_SAMESITE = "None" if CSRF_COOKIE_SECURE else "Lax"
# Webhooks forge-proof and erasures remembered under a key of their own: no defaults here.
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET")
ANYMAIL.setdefault("WEBHOOK_SECRET", ANYMAIL_WEBHOOK_SECRET)  # noqa: F405
RALLY_SUPPRESSION_HASH_KEY = env.str("RALLY_SUPPRESSION_HASH_KEY")
