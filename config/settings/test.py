"""Settings for pytest: PostgreSQL when DATABASE_URL is set, else a SQLite file.

The test database must be a file (not SQLite's in-memory default) because the end-to-end tests
start real Celery worker processes that read and write the same database.
"""

from .base import *  # noqa: F403
from .base import BASE_DIR, DATABASES, env

SECRET_KEY = "rally-tests-not-secret"  # noqa: S105
# Webhook tests post with these basic-auth credentials, as an ESP configured with them would.
ANYMAIL_WEBHOOK_SECRET = "rally-webhooks:test-secret"  # noqa: S105
ANYMAIL = {**ANYMAIL, "WEBHOOK_SECRET": ANYMAIL_WEBHOOK_SECRET}  # noqa: F405
# bench_send and bench_sign are a development tool (tested here); production leaves them out.
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Worker processes started by the end-to-end tests get EMAIL_BACKEND and ANYMAIL from their
# environment, pointing at a fake ESP; the test process itself keeps mail in memory.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
# Tests use their own Redis database so they never disturb a `make run` on the same machine.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test.sqlite3")}
# Static files are not collected for tests; WhiteNoise would warn about the missing folder.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
# Tests edit petitions and load them again at once; tests/campaigns/test_petition_cache.py
# turns the cache on to test it.
RALLY_PETITION_CACHE_SECONDS = 0
# Many tests send several mailings to the same supporters within a day: the frequency cap
# (mailings/sending/frequency_cap.py) is off unless a test turns it on. From the environment
# first, so that a test's worker processes get the cap the test gives them.
RALLY_FREQUENCY_CAP_PER_DAY = env.int("RALLY_FREQUENCY_CAP_PER_DAY", default=0)
RALLY_FREQUENCY_CAP_PER_WEEK = env.int("RALLY_FREQUENCY_CAP_PER_WEEK", default=0)
