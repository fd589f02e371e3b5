"""Settings for a laptop: `make run`. Debug on, email to the local outbox in the admin."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="rally-local-development-only-not-secret")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="mailings.sending.esp.outbox.EmailBackend")
# A laptop's webhooks still demand credentials (anymail would accept anyone without them).
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET", default="rally-local:webhook-secret")
ANYMAIL.setdefault("WEBHOOK_SECRET", ANYMAIL_WEBHOOK_SECRET)  # noqa: F405
# bench_send and bench_sign are a development tool; the production settings leave them out.
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405
