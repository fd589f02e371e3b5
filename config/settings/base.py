"""Settings shared by every environment, read from the environment (12-factor).

Every variable read here is listed, with a comment, in `.env.example`.
"""

import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django_prose_editor.config import html_tags
from js_asset import static_lazy
from kombu import Exchange, Queue

from config.logs import logging_settings, structlog_configure

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
# The public base URL; links in emails (petition, unsubscribe) are built on it.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "django_structlog",
    "django_countries",
    # The mailing body editor (mailings/content/body_editor.py): its static files and checks.
    "django_prose_editor",
    "supporters",
    "campaigns",
    "mailings",
    # After supporters: privacy/admin.py re-registers the supporter admin with GDPR tools.
    "privacy",
    "operations",
    # The OSDI API at /api/osdi/v1/ (Action Network's dialect) and its tokens.
    "api",
    # Signed outbound webhooks to the organisation's own systems (a Celery queue of their own).
    "webhooks",
]

# supporters.Engagement's index by supporter carries last_engaged_at as an INCLUDE column for
# PostgreSQL's index-only scans (docs/performance.md, "Segment counts"); SQLite, the laptop's
# database, builds the same index without it and Django says so on every command.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

MIDDLEWARE = [
    # /healthz, answered before the host check and the HTTPS redirect (its docstring says why).
    "operations.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header (CONTENT_SECURITY_POLICY below).
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "config.middleware.LanguageFromQueryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.FormEncodingMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Binds a request id (and the user's id) to every line logged while the request runs;
    # django-structlog's, with supporters' tokens kept out of the request lines.
    "config.middleware.RequestLogMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "config.context_processors.language_links",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the embedded default for a laptop; set DATABASE_URL for PostgreSQL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'rally.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # var/ is not in git: a fresh clone must be able to create its database there.
    (BASE_DIR / "var").mkdir(exist_ok=True)
    # WAL lets the web process read while a worker writes; IMMEDIATE takes the write lock at
    # BEGIN, so two workers claiming a batch queue up instead of failing with "database locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # Off by default: the check is a SELECT 1 before each request's first query, a round trip
    # on every signature (docs/performance.md). Without it, a request that meets a connection
    # the database dropped (a restart) fails once, and the next one connects afresh.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool(
        "DATABASE_CONN_HEALTH_CHECKS", default=False
    )
    # Behind PgBouncer in transaction mode (README, "Scale out"): a server-side cursor (what
    # `.iterator()` uses on PostgreSQL) would outlive its transaction's hold on the connection.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The mailing body editor's own menu (merge fields, petition link, button, image): a Tiptap
# extension that django-prose-editor loads when a widget's config names it. Rally sanitises
# what is saved itself (config/lib/richtext.py), so it adds nothing to the package's allowlist.
DJANGO_PROSE_EDITOR_EXTENSIONS = [
    {
        "js": [static_lazy("mailings/editor/rally_mailing.js")],
        "extensions": {"RallyMailing": html_tags([])},
    },
]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# Uploads (supporter imports) wait here for a worker, which deletes each once imported: web and
# worker must share it (one machine, or a shared volume as in docker-compose.yml).
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Redis and Celery --------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
# A task is acknowledged only after it ran, so a killed worker's task is delivered again; every
# task is written to be safe to run twice (see mailings/sending/__init__.py).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "transactional"
# Confirmation emails and test sends never wait behind a bulk send: each kind of work has a
# queue of its own (transactional, bulk, tracking), and a worker may serve any of them.
# Each queue has its own exchange and routing key: queues that shared the default exchange and
# key would each receive a copy of every task.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name)
    for name in ("transactional", "bulk", "tracking", "webhooks")
)
CELERY_TASK_ROUTES = {
    "mailings.sending.tasks.mailing_snapshot_task": {"queue": "bulk"},
    "mailings.sending.tasks.mailing_send_batch_task": {"queue": "bulk"},
    # It may send (what the ESP proved it never accepted), so it waits behind no one but bulk.
    "mailings.sending.tasks.delivery_reconcile_unknown_task": {"queue": "bulk"},
    "mailings.feedback.tasks.tracking_events_process_task": {"queue": "tracking"},
    "mailings.feedback.tasks.tracking_event_sweep_task": {"queue": "tracking"},
    # A long task that nobody waits on by the second, like a send batch: never transactional.
    "supporters.tasks.supporter_import_task": {"queue": "bulk"},
    # One UPDATE over a re-permission mailing's recipients: long, and nobody waits on it.
    "mailings.sending.tasks.mailing_sunset_task": {"queue": "bulk"},
    # Outbound webhooks wait on other people's servers: never in the way of signing or sending.
    "webhooks.tasks.*": {"queue": "webhooks"},
}
# How often beat runs the recovery sweep (mailings/sending/sweep.py) and its twin for webhooks.
RALLY_SWEEP_SECONDS = env.float("RALLY_SWEEP_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE = {
    "petition-counts-reconcile": {
        "task": "campaigns.tasks.petition_counts_reconcile_task",
        "schedule": env.float("RALLY_COUNT_RECONCILE_SECONDS", default=60.0),
    },
    "mailings-sweep": {
        "task": "mailings.sending.tasks.mailing_sweep_task",
        "schedule": RALLY_SWEEP_SECONDS,
    },
    # Unknown deliveries are asked about at the ESP (mailings/sending/reconcile/).
    "deliveries-reconcile-unknown": {
        "task": "mailings.sending.tasks.delivery_reconcile_unknown_task",
        "schedule": env.float("RALLY_RECONCILE_SECONDS", default=60.0),
    },
    # Webhook events whose processing task Redis lost are queued again from PostgreSQL.
    "tracking-events-sweep": {
        "task": "mailings.feedback.tasks.tracking_event_sweep_task",
        "schedule": RALLY_SWEEP_SECONDS,
    },
    # Re-permission mailings past RALLY_SUNSET_GRACE_DAYS suppress their silent recipients.
    "mailings-sunset": {
        "task": "mailings.sending.tasks.mailing_sunset_task",
        "schedule": 3600.0,
    },
    # Webhook deliveries that are due are queued again from PostgreSQL: retries left to the
    # sweep, and tasks a Redis restart or a dead worker lost (webhooks/services.py).
    "webhook-deliveries-sweep": {
        "task": "webhooks.tasks.webhook_deliveries_sweep_task",
        "schedule": RALLY_SWEEP_SECONDS,
    },
    # Uploads of imports nobody started are deleted (RALLY_IMPORT_DRAFT_HOURS).
    "supporter-import-drafts-expire": {
        "task": "supporters.tasks.supporter_import_drafts_expire_task",
        "schedule": 3600.0,
    },
}


# --- Engagement, list protection and the sunset flow (supporters/engagement.py) -------------
# Active: engaged (opened, clicked, signed, or joined) within this many days.
RALLY_ENGAGEMENT_ACTIVE_DAYS = env.int("RALLY_ENGAGEMENT_ACTIVE_DAYS", default=90)
# Dormant: no engagement for this many days and at least this many bulk mailings since.
RALLY_ENGAGEMENT_DORMANT_DAYS = env.int("RALLY_ENGAGEMENT_DORMANT_DAYS", default=180)
RALLY_ENGAGEMENT_DORMANT_MAILINGS = env.int("RALLY_ENGAGEMENT_DORMANT_MAILINGS", default=10)
# Leave dormant supporters out of bulk mailings unless a mailing opts in (include_dormant).
RALLY_EXCLUDE_DORMANT = env.bool("RALLY_EXCLUDE_DORMANT", default=True)
# The frequency cap: at most this many bulk mailings per supporter per day and per rolling
# week; a supporter over it is skipped at claim. 0 turns a cap off.
RALLY_FREQUENCY_CAP_PER_DAY = env.int("RALLY_FREQUENCY_CAP_PER_DAY", default=2)
RALLY_FREQUENCY_CAP_PER_WEEK = env.int("RALLY_FREQUENCY_CAP_PER_WEEK", default=5)
# Days a re-permission mailing's recipients have to engage before the sunset suppresses them.
RALLY_SUNSET_GRACE_DAYS = env.int("RALLY_SUNSET_GRACE_DAYS", default=14)


# --- The OSDI API (api/) and outbound webhooks (webhooks/) ------------------------------------
# Requests per minute each API token may make; more are answered 429.
RALLY_API_RATE_LIMIT_PER_MINUTE = env.int("RALLY_API_RATE_LIMIT_PER_MINUTE", default=600)
# The largest page a collection gives (`max_pagesize` at the entry point).
RALLY_API_MAX_PAGE_SIZE = env.int("RALLY_API_MAX_PAGE_SIZE", default=100)
# Webhook deliveries are retried with back-off for this long, then given up.
RALLY_WEBHOOK_RETRY_HOURS = env.int("RALLY_WEBHOOK_RETRY_HOURS", default=24)
RALLY_WEBHOOK_TIMEOUT_SECONDS = env.float("RALLY_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Whether a webhook may point at the loopback or a private range (production: never).
RALLY_WEBHOOK_ALLOW_PRIVATE = env.bool("RALLY_WEBHOOK_ALLOW_PRIVATE", default=True)


# --- Health: /healthz and the operator's page of workers and queues (operations/) -----------
# How often each worker records its heartbeat in Redis (config/heartbeats.py).
RALLY_WORKER_HEARTBEAT_SECONDS = env.float("RALLY_WORKER_HEARTBEAT_SECONDS", default=10.0)
# /healthz fails when no worker's heartbeat is this recent, or when some queue has no worker
# whose heartbeat is.
RALLY_HEALTH_WORKER_MAX_AGE_SECONDS = env.float(
    "RALLY_HEALTH_WORKER_MAX_AGE_SECONDS", default=6 * RALLY_WORKER_HEARTBEAT_SECONDS
)
# /healthz fails when the sweep that beat starts last finished longer ago than this: beat is
# down, or no worker takes its task, or the sweep keeps failing.
RALLY_HEALTH_BEAT_MAX_AGE_SECONDS = env.float(
    "RALLY_HEALTH_BEAT_MAX_AGE_SECONDS", default=max(4 * RALLY_SWEEP_SECONDS, 120.0)
)

# --- Email -------------------------------------------------------------------------------------
# Any Django email backend: anymail's ESP backends (e.g. anymail.backends.postmark.EmailBackend
# with ANYMAIL={"POSTMARK_SERVER_TOKEN": "..."}), Django's SMTP backend, or the local outbox.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
ANYMAIL = env.json("ANYMAIL", default={})
# The basic-auth credentials ("user:password") every ESP webhook must present: anymail's
# WEBHOOK_SECRET, configured at the ESP as https://user:password@host/anymail/<esp>/tracking/.
# Unset, anymail refuses to start its webhook views without it (in production it is required).
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET", default="")
if ANYMAIL_WEBHOOK_SECRET:
    ANYMAIL.setdefault("WEBHOOK_SECRET", ANYMAIL_WEBHOOK_SECRET)
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Rally <rally@localhost>")
# The mailbox that receives mailto: unsubscribe requests (List-Unsubscribe): each message names
# it with a signed token added (unsubscribe+<token>@…), read back from anymail's inbound
# webhook by supporters/inbound.py.
UNSUBSCRIBE_MAILTO = env.str("UNSUBSCRIBE_MAILTO", default="unsubscribe@localhost")

# --- Mailings: who they come from, and the footer of every bulk message -------------------------
# The senders a campaigner may choose, as JSON: [{"name": …, "email": …, "reply_to": …}, …]
# (reply_to may be left out). Receivers check that a From domain is the one that signed the
# message (DMARC alignment): list addresses only on domains the ESP signs for (DKIM, SPF).
RALLY_SENDERS = env.json(
    "RALLY_SENDERS",
    default=[{"name": "Rally campaigns", "email": "campaigns@rally.example", "reply_to": ""}],
)
# The domains a mailing's From address may use; empty or unset, the domains of RALLY_SENDERS.
# mailings/content/senders.py checks both settings (`manage.py check`).
RALLY_SENDER_DOMAINS = [
    domain.lower() for domain in env.list("RALLY_SENDER_DOMAINS", default=[])
] or sorted(
    {
        str(sender.get("email", "")).rpartition("@")[2].lower()
        for sender in RALLY_SENDERS
        if isinstance(sender, dict)
    }
)
# Who sends the appeals, and a postal address where they can be reached: every bulk message's
# footer shows both, as anti-spam laws (CAN-SPAM, PECR) and receivers' policies ask.
RALLY_ORGANISATION_NAME = env.str("RALLY_ORGANISATION_NAME", default="Rally Demo")
RALLY_ORGANISATION_ADDRESS = env.str(
    "RALLY_ORGANISATION_ADDRESS", default="1 Example Street, London N1 1AA, United Kingdom"
)

# --- Sending -----------------------------------------------------------------------------------
# Rows a batch claims and sends over one connection (a Postmark batch request takes 500). Fewer
# per-batch costs beside more messages (docs/performance.md, "Batch size"); a worker killed
# mid-batch leaves at most this many of unknown outcome. With a contract rate, a batch is
# smaller where this many would not be sent within half the lease (mailings/sending/batches.py).
RALLY_SEND_BATCH_SIZE = env.int("RALLY_SEND_BATCH_SIZE", default=500)
# How many batch tasks of one mailing run at once; each re-enqueues itself while work remains.
RALLY_SEND_PARALLELISM = env.int("RALLY_SEND_PARALLELISM", default=8)
# A claimed batch not finished within this many seconds belongs to a dead worker.
RALLY_SEND_LEASE_SECONDS = env.int("RALLY_SEND_LEASE_SECONDS", default=300)
# The ESP account's contract rate, messages per second shared by all workers; 0 = no limit.
RALLY_SEND_RATE_PER_SECOND = env.float("RALLY_SEND_RATE_PER_SECOND", default=0)
# The circuit breaker pauses a mailing when, over the window, at least MIN_ATTEMPTS sends were
# tried and more than FAILURE_RATE of them failed (throttled, refused, or the ESP was down).
RALLY_BREAKER_WINDOW_SECONDS = env.int("RALLY_BREAKER_WINDOW_SECONDS", default=60)
RALLY_BREAKER_MIN_ATTEMPTS = env.int("RALLY_BREAKER_MIN_ATTEMPTS", default=50)
RALLY_BREAKER_FAILURE_RATE = env.float("RALLY_BREAKER_FAILURE_RATE", default=0.5)
# The breaker also hears the ESP's webhooks: a mailing pauses itself when, once at least
# MIN_SAMPLE of its messages were sent, complaints pass COMPLAINT_RATE (Gmail and Yahoo refuse
# bulk senders past 0.3%) or hard bounces pass HARD_BOUNCE_RATE of them.
RALLY_BREAKER_MIN_SAMPLE = env.int("RALLY_BREAKER_MIN_SAMPLE", default=1000)
RALLY_BREAKER_COMPLAINT_RATE = env.float("RALLY_BREAKER_COMPLAINT_RATE", default=0.003)
RALLY_BREAKER_HARD_BOUNCE_RATE = env.float("RALLY_BREAKER_HARD_BOUNCE_RATE", default=0.05)
# An A/B test's winner is not sent to the rest of the audience when the test's slice drew
# complaints past COMPLAINT_RATE or unsubscribes past this rate (mailings/sending/ab_test.py).
RALLY_BREAKER_UNSUBSCRIBE_RATE = env.float("RALLY_BREAKER_UNSUBSCRIBE_RATE", default=0.01)
# Those rates are counted at most once per this many seconds per mailing, and a trip is never
# noticed later than that (mailings/sending/breaker.py).
RALLY_BREAKER_CHECK_SECONDS = env.float("RALLY_BREAKER_CHECK_SECONDS", default=5.0)
# Soft bounces (mailbox full, greylisted) suppress an address once this many arrive within
# the window: a mailbox that keeps refusing is as dead as a hard bounce.
RALLY_SOFT_BOUNCE_LIMIT = env.int("RALLY_SOFT_BOUNCE_LIMIT", default=3)
RALLY_SOFT_BOUNCE_WINDOW_DAYS = env.int("RALLY_SOFT_BOUNCE_WINDOW_DAYS", default=30)
# A large import is merged by this many database sessions at once, each with its share of the
# people (supporters/imports/lanes.py): PostgreSQL runs one session on one core, so this many
# cores work on it. 1 merges in one session; SQLite always does.
RALLY_IMPORT_LANES = env.int("RALLY_IMPORT_LANES", default=2)
# An uploaded list (people's addresses) whose import nobody started within this many hours is
# deleted; the import is marked failed, saying so.
RALLY_IMPORT_DRAFT_HOURS = env.int("RALLY_IMPORT_DRAFT_HOURS", default=24)
# Keep each mailing's report counters as events arrive (mailings/report_counts.py). Only
# bench_report turns it off, to measure what keeping them costs: a report is wrong without them.
RALLY_REPORT_BUCKETS = env.bool("RALLY_REPORT_BUCKETS", default=True)
# An unknown delivery (its worker lost) is asked about at the ESP this long after it became
# unknown: the ESP's search runs behind its API (Postmark's by seconds, rarely minutes), and
# a message it accepted but does not list yet would be sent twice. Unanswered, it is asked
# again as long after, at most MAX_ATTEMPTS times in all; then it stays unknown.
RALLY_RECONCILE_DELAY_SECONDS = env.int("RALLY_RECONCILE_DELAY_SECONDS", default=300)
RALLY_RECONCILE_MAX_ATTEMPTS = env.int("RALLY_RECONCILE_MAX_ATTEMPTS", default=12)
# A sending mailing with no batch claimed for this long has its task chains queued again.
RALLY_SEND_STALL_SECONDS = env.int("RALLY_SEND_STALL_SECONDS", default=120)
# A send to more recipients than this waits, "awaiting approval", until a second campaigner
# approves it (0: every send does). The default leaves the demo's appeal and a small group's
# sends alone and catches a send to a whole list.
RALLY_APPROVAL_THRESHOLD = env.int("RALLY_APPROVAL_THRESHOLD", default=10_000)
# The IANA time zone the schedule page offers first (a campaigner may pick another; the page
# remembers it for their session). Times are stored in UTC whatever it is.
RALLY_CAMPAIGNER_TIMEZONE = env.str("RALLY_CAMPAIGNER_TIMEZONE", default=TIME_ZONE)
# A misspelt zone stops Rally starting, rather than a campaigner's schedule page.
ZoneInfo(RALLY_CAMPAIGNER_TIMEZONE)

# --- Logs (config/logs.py) ---------------------------------------------------------------------
# "json": one JSON object a line, for a log collector (production's default); "console":
# readable lines. Either way each line carries the request, task, mailing, batch and delivery
# ids bound where it was logged.
RALLY_LOG_FORMAT = env.str("RALLY_LOG_FORMAT", default="") or "console"
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = logging_settings(log_format=RALLY_LOG_FORMAT, level=LOG_LEVEL)
structlog_configure()
# Celery tasks carry the request id (or parent task id) of whoever queued them, and log their
# start, success and failure with their task id.
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# Supporters' IP addresses stay out of the logs: nobody reading them needs to know who signed.
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
# One line a request (request_finished, with its status and time) is enough; the start and
# every task's queueing and start are there at DEBUG.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
DJANGO_STRUCTLOG_CELERY_TASK_START_LOG_LEVEL = logging.DEBUG

# --- Petitions ---------------------------------------------------------------------------------
# Sign attempts per client IP per minute, and sign or resend attempts per email per hour; 0 = off.
# Many supporters can share one IP (a mobile carrier, a campus): keep the IP limit generous.
RALLY_SIGN_LIMIT_PER_IP = env.int("RALLY_SIGN_LIMIT_PER_IP", default=30)
RALLY_SIGN_LIMIT_PER_EMAIL = env.int("RALLY_SIGN_LIMIT_PER_EMAIL", default=10)
# Behind a reverse proxy, the META key of the header it sets, e.g. HTTP_X_FORWARDED_FOR.
RALLY_CLIENT_IP_HEADER = env.str("RALLY_CLIENT_IP_HEADER", default="")
# An optional captcha on the sign form: "turnstile" or "hcaptcha" (off when empty). Its widget
# is the one script Rally loads from another origin, so it is off by default.
RALLY_CAPTCHA_PROVIDER = env.str("RALLY_CAPTCHA_PROVIDER", default="")
RALLY_CAPTCHA_SITE_KEY = env.str("RALLY_CAPTCHA_SITE_KEY", default="")
RALLY_CAPTCHA_SECRET_KEY = env.str("RALLY_CAPTCHA_SECRET_KEY", default="")
# Override the provider's verify endpoint (tests point it at a local fake).
RALLY_CAPTCHA_VERIFY_URL = env.str("RALLY_CAPTCHA_VERIFY_URL", default="")
# How long each web process may show a petition, and its page with a blank form, as it read and
# rendered it (an edit shows within this time); signing always checks in the database that the
# petition is still open. 0 = read and render every time.
RALLY_PETITION_CACHE_SECONDS = env.float("RALLY_PETITION_CACHE_SECONDS", default=5.0)
# How long a batch of signatures may wait on PostgreSQL (a row locked elsewhere, say) before it
# gives up: its signers then see "nothing was stored, please sign again", and the signers behind
# it in the process are no longer held up. Milliseconds.
RALLY_SIGN_WRITE_TIMEOUT_MS = env.int("RALLY_SIGN_WRITE_TIMEOUT_MS", default=5000)
# How long a double opt-in confirmation link stays valid.
RALLY_CONFIRMATION_MAX_AGE_DAYS = env.int("RALLY_CONFIRMATION_MAX_AGE_DAYS", default=7)
# How long the tracked links and open pixel of a bulk message work
# (mailings/content/tracked_links.py); after that a link shows a neutral page instead of leading
# anywhere.
RALLY_TRACKING_TOKEN_MAX_AGE_DAYS = env.int("RALLY_TRACKING_TOKEN_MAX_AGE_DAYS", default=365)

# --- The list: erasure, import ------------------------------------------------------------------
# The key of the erased-address list's HMACs (supporters.SuppressedEmail). Its own key, not
# SECRET_KEY: rotating SECRET_KEY must not forget who asked to be erased. Required in production.
RALLY_SUPPRESSION_HASH_KEY = env.str("RALLY_SUPPRESSION_HASH_KEY", default="rally-dev-suppression")

# --- Security headers ---------------------------------------------------------------------------
# Content-Security-Policy (django-csp). The public pages run only scripts and style sheets
# served from our own origin: none has an inline <script> or <style>, and the pages are cached
# (campaigns/views.py), so a per-request nonce could not be in them. Style attributes stay
# allowed: a petition's body keeps the campaigner's (config/lib/richtext.py checks each), and
# the progress bar is one. Images may come from any https site (a petition's or mailing's own).
# The admin adds RALLY_ADMIN_CSP_UPDATE (config/middleware.py); a page that needs an inline
# script gives it request.csp_nonce (the mailing editor's import map does).
_CAPTCHA_ORIGINS = {
    # The captcha's script, its frame and what they fetch (campaigns/abuse.py).
    "turnstile": ["https://challenges.cloudflare.com"],
    "hcaptcha": ["https://hcaptcha.com", "https://*.hcaptcha.com"],
}.get(RALLY_CAPTCHA_PROVIDER, [])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE, *_CAPTCHA_ORIGINS],
        "style-src": [SELF, *_CAPTCHA_ORIGINS],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https:"],
        "connect-src": [SELF, *_CAPTCHA_ORIGINS],
        "frame-src": [SELF, *_CAPTCHA_ORIGINS],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        # No site may frame a page, except the embed form and the pages it leads to
        # (campaigns/views.py `embeddable`), which get RALLY_EMBED_FRAME_ANCESTORS.
        "frame-ancestors": [NONE],
    },
}
# The admin's pages also have <style> elements and style attributes of their own, the editor
# injects styles, and a mailing's preview (an iframe's srcdoc, which inherits the page's policy)
# is an email, styled inline. Scripts stay as strict as on the public pages.
RALLY_ADMIN_CSP_UPDATE = {"style-src": [UNSAFE_INLINE]}
# Who may put the embed form in a frame: any site ("*", the default), or a list of origins
# separated by commas (https://campaign.example.org,https://partner.example).
RALLY_EMBED_FRAME_ANCESTORS = env.list("RALLY_EMBED_FRAME_ANCESTORS", default=["*"])
# Every other page refuses to be framed, for browsers that predate frame-ancestors too.
X_FRAME_OPTIONS = "DENY"
