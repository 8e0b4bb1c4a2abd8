"""Every setting Kirim reads, read here once from the environment (and `.env` when present)."""

import base64
import hashlib
import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from kirim import __version__

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # real environment variables win over the file


def required(name):
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"Set the {name} environment variable (or put it in .env).")
    return value


KIRIM_VERSION = __version__  # /v1/health and `manage.py kirim_version` answer it
SECRET_KEY = required("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
# The development-only app (dev/: the demo's seed_demo): installed where DEBUG is on, unless told.
DEV_TOOLS = env.bool("DEV_TOOLS", default=DEBUG)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Earlier SECRET_KEYs, still accepted for sessions, signed cursors and media links while they age out.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# Fernet keys (core/encryption.py) for Meta tokens and subscription secrets at rest: the first encrypts,
# all decrypt. Unset, keys derived from SECRET_KEY and its fallbacks stand in (`check --deploy` warns).
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[])
ENCRYPTION_KEYS_DERIVED = not ENCRYPTION_KEYS
if ENCRYPTION_KEYS_DERIVED:
    ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(f"kirim-encryption:{key}".encode()).digest()).decode()
        for key in (SECRET_KEY, *SECRET_KEY_FALLBACKS)
    ]

META_GRAPH_URL = env.str("META_GRAPH_URL", default="https://graph.facebook.com/v23.0").rstrip("/")
META_TIMEOUT = env.float("META_TIMEOUT", default=10.0)  # seconds, one attempt
META_MAX_ATTEMPTS = env.int("META_MAX_ATTEMPTS", default=3)
META_RETRY_BUDGET = env.float("META_RETRY_BUDGET", default=15.0)  # seconds, all attempts and waits
# Seconds a request may hold its claim on a Meta call (receipts, sends) before another takes over:
# longer than the call with all its retries, so only a holder that died ever loses it.
META_CLAIM_LEASE = env.float("META_CLAIM_LEASE", default=30.0)
if META_CLAIM_LEASE <= META_RETRY_BUDGET:
    raise ImproperlyConfigured("META_CLAIM_LEASE must be longer than META_RETRY_BUDGET.")
# Tests turn this on: a call to Meta (or a wait for one) inside a database transaction raises.
META_FORBID_IN_TRANSACTION = env.bool("META_FORBID_IN_TRANSACTION", default=False)
META_APP_SECRET = required("META_APP_SECRET")
# The app secret being replaced: webhooks signed with it are accepted too until it is unset.
META_APP_SECRET_PREVIOUS = env.str("META_APP_SECRET_PREVIOUS", default="")
META_WEBHOOK_VERIFY_TOKEN = required("META_WEBHOOK_VERIFY_TOKEN")
# Days message content is kept (orgs may set their own); unset: kept until erased.
MESSAGE_CONTENT_RETENTION_DAYS = env.int("MESSAGE_CONTENT_RETENTION_DAYS", default=None)
AUDIT_LOG_KEEP_DAYS = env.int("AUDIT_LOG_KEEP_DAYS", default=365)  # purge_expired deletes older entries
READ_RECEIPT_WINDOW_DAYS = env.int("READ_RECEIPT_WINDOW_DAYS", default=7)
WEBHOOK_EVENTS_KEEP_DAYS = env.int("WEBHOOK_EVENTS_KEEP_DAYS", default=30)  # raw bodies, once applied
# Events with something not applied wait this long for an operator's `reprocess_webhooks`.
WEBHOOK_FAILED_EVENTS_KEEP_DAYS = env.int("WEBHOOK_FAILED_EVENTS_KEEP_DAYS", default=90)
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=600)  # per org; an org may set its own
# How long an API key rotated (API, admin, rotate_api_key) keeps working beside its successor.
API_KEY_ROTATION_GRACE_HOURS = env.int("API_KEY_ROTATION_GRACE_HOURS", default=24)
AUTH_FAILURES_PER_MINUTE = env.int("AUTH_FAILURES_PER_MINUTE", default=60)  # per client address
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)  # proxies appending to X-Forwarded-For
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)  # Meta's sends are a few kB
# Meta documents webhook payloads of up to 3 MB; 4 MiB fits that in either unit with room to spare.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=4 * 1024 * 1024)
# Media uploads on Meta's surface: Meta's largest media (documents, 100 MB), held in memory once on its
# way to Meta; the body may add 1 MiB of multipart around the file.
MEDIA_MAX_BYTES = env.int("MEDIA_MAX_BYTES", default=100 * 1024 * 1024)
MEDIA_MAX_BODY_BYTES = MEDIA_MAX_BYTES + 1024 * 1024
# How long the `url` of GET /{version}/{media_id} downloads without a key: Meta's own lasts 5 minutes.
MEDIA_LINK_MAX_AGE = env.int("MEDIA_LINK_MAX_AGE", default=300)  # seconds
# Django's own cap (a bare 400) must never fire before BodyGateMiddleware's 413 on a JSON body.
# (Uploaded files are not held to it: Django spools them to disk past FILE_UPLOAD_MAX_MEMORY_SIZE.)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, WEBHOOK_MAX_BODY_BYTES)

# Events out (outbox/): webhook subscriptions and their deliveries.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)  # development and tests only


def networks(name):
    """A comma-separated list of CIDRs (`10.20.0.0/16,fd00:1::/64`) as ip_network objects."""
    try:
        return [ipaddress.ip_network(cidr.strip()) for cidr in env.list(name, default=[]) if cidr.strip()]
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}.") from None


# Private networks where subscribers may be (a company's own receivers); https is still required.
WEBHOOK_ALLOWED_NETWORKS = networks("WEBHOOK_ALLOWED_NETWORKS")
# Seconds to wait before each retry; the first attempt is immediate. Jittered by ±20%.
WEBHOOK_RETRY_SCHEDULE = [
    float(s) for s in env.list("WEBHOOK_RETRY_SCHEDULE", default=["10", "30", "120", "600", "3600", "21600", "86400"])
]
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)  # seconds, one attempt
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=24)  # of one event type, in a row
WEBHOOK_DELIVERIES_KEEP_DAYS = env.int("WEBHOOK_DELIVERIES_KEEP_DAYS", default=30)  # finished ones, dead letters too
# Deliveries queued or being attempted at once, per subscription and per org: the rest wait in the
# database, so one org's backlog holds at most WEBHOOK_MAX_IN_FLIGHT_PER_ORG workers and places in the queue.
WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = env.int("WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION", default=2)
WEBHOOK_MAX_IN_FLIGHT_PER_ORG = env.int("WEBHOOK_MAX_IN_FLIGHT_PER_ORG", default=2)
if min(WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION, WEBHOOK_MAX_IN_FLIGHT_PER_ORG) < 1:
    raise ImproperlyConfigured("WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION and _PER_ORG must be 1 or more.")
# Seconds between sweeps: due retries are queued then, and the slots of dead workers freed.
WEBHOOK_SWEEP_INTERVAL = env.float("WEBHOOK_SWEEP_INTERVAL", default=5.0)

# `manage.py scheduler`: seconds between runs of each periodic job, on whichever host claims the
# period first (0: never, when cron runs it instead).
SCHEDULE_PURGE_EXPIRED = env.int("SCHEDULE_PURGE_EXPIRED", default=600)
SCHEDULE_SWEEPER = env.int("SCHEDULE_SWEEPER", default=60)  # restarts the sweep chain if it died
SCHEDULE_SYNC_TEMPLATES = env.int("SCHEDULE_SYNC_TEMPLATES", default=3600)

# Django's tasks framework (the django-tasks backport): the database queue by default, RQ on Redis
# when TASKS_BACKEND=rq (workers: `manage.py db_worker`, or `manage.py rqworker --with-scheduler`).
TASKS_BACKEND = env.str("TASKS_BACKEND", default="db")
TASK_BACKENDS = {
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]},
}
if TASKS_BACKEND not in TASK_BACKENDS:
    raise ImproperlyConfigured("Set TASKS_BACKEND to db or rq.")
TASKS = {"default": TASK_BACKENDS[TASKS_BACKEND]}
RQ_QUEUES = {"default": {"URL": env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")}}

# Seeing inside (docs/operations/observability.md): Prometheus metrics at /metrics, workers' heartbeats.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")  # when set, a scrape must send it as a bearer token
# A task worker on a host without Kirim's web server serves its counts on this port (0: it does not).
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDRESS = env.str("WORKER_METRICS_ADDRESS", default="127.0.0.1")
# Seconds between a task worker's heartbeats; one silent for three of them counts as gone.
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=10.0)
# Error reports to Sentry (core/reporting.py), scrubbed like the logs; off unless a DSN is set.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="")
if SENTRY_DSN:
    from core import reporting

    reporting.start(SENTRY_DSN, environment=SENTRY_ENVIRONMENT)
# Traces with OpenTelemetry (core/tracing.py), off unless an OTLP endpoint is set; the exporter reads
# OpenTelemetry's own variables (OTEL_EXPORTER_OTLP_HEADERS, ...) itself.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="kirim")
if OTEL_EXPORTER_OTLP_ENDPOINT:
    from core import tracing

    tracing.start(service_name=OTEL_SERVICE_NAME)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "inbox",
    "receipts",
    "outbox",
    # After outbox, like django_tasks_db below: its `rqworker` (django_rq's, with a heartbeat) stands in.
    *(["django_rq"] if TASKS_BACKEND == "rq" else []),
    # After outbox: its `db_worker`, which outlives a database restart, stands in for django-tasks-db's.
    "django_tasks",
    "django_tasks_db",
    *(["dev"] if DEV_TOOLS else []),
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "core.middleware.RequestLogMiddleware",
    "core.middleware.RequestGateMiddleware",
    "core.middleware.BodyGateMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "orgs.ratelimit.RateLimitHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "inbox.admin.second_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kirim.urls"
WSGI_APPLICATION = "kirim.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "core.db.postgresql"  # Django's, with a health check that costs no query
    DATABASES["default"]["OPTIONS"] = {}
    # Parameters bound by the server let psycopg prepare a statement after its second run on a
    # connection: the hot path's statements skip planning, ~0.2 ms each (docs/benchmarks.md). A pooler
    # that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode) needs it off.
    # Pooled connections keep theirs from request to request.
    # A fast path, with its plain path and their equivalence test: docs/development/performance.md.
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}
    # A pooler in transaction mode hands each transaction a different server connection: a cursor
    # kept open across transactions would be lost (Django's .iterator() outside a transaction).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not env.bool("DB_SERVER_SIDE_CURSORS", default=True)
    # Connections per worker process, shared by its threads: a thread takes one for its queries and
    # gives it back while it waits on Meta (core/db/waiting.py), so far fewer are needed than threads.
    # 0: no pool, a connection per thread kept CONN_MAX_AGE seconds.
    DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=3)
    if DB_POOL_SIZE:
        DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": 10}
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool hands connections back after each request
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # the backend checks each one the pool hands out
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)  # per thread
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite ignores SELECT ... FOR UPDATE; taking the write lock when a transaction begins keeps
    # "one Meta call per message" true on the development database too.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Admin and docs assets served by the app itself (whitenoise): compressed, cache-busting names in
# production; straight from the apps in development and tests, no collectstatic needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # TLS ends at the load balancer
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [
        r"^v1/health(/live|/ready)?$",
        r"^metrics$",
    ]  # load balancers and Prometheus speak plain HTTP
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# Managers and operators give a TOTP code (or a recovery code) after their password to reach the admin
# (inbox/admin/second_factor.py). On unless DEBUG: development and the tests' own server may go without.
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = "Kirim"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orgs.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orgs.auth.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["orgs.ratelimit.OrgRateLimit"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.envelopes.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.JsonOnlyNegotiation",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS answers 405 like any other method the API lacks
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Kirim API",
    "DESCRIPTION": "WhatsApp Cloud API gateway. Request bodies are Meta's own; answers come in Kirim's envelope.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/v1",
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "REDOC_DIST": "SIDECAR",  # docs assets ship in drf-spectacular-sidecar: no CDN
    # ... and no web fonts either (templates/kirim/api_docs.html drops drf-spectacular's Google Fonts links).
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
                "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
                "code": {"fontFamily": "ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace"},
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["core.schema.metas_paths_once"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.overlapping_variants_are_any_of",
        "inbox.api.serializers.messages_request_in_documents",
        "outbox.api.serializers.subscription_request_in_documents",
        "inbox.api.business.unblock_body_in_documents",
    ],
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": "inbox.models.Status",
        "DirectionEnum": "inbox.models.Direction",
        "WebhookEventTypeEnum": "outbox.models.EventType",
        "WebhookDeliveryStatusEnum": "outbox.models.DeliveryStatus",
    },
}

LOGGING_CONFIG = "core.logs.configure"  # every record redacted: no body in any message or traceback
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One JSON line per record, whoever logs it (gunicorn's own: gunicorn.conf.py's logconfig_dict).
    "formatters": {"json": {"()": "core.logs.JsonFormatter"}},
    "filters": {"redact_access_token": {"()": "core.middleware.RedactAccessToken"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json"},
        "server": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact_access_token"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "kirim.requests": {"level": "INFO"},  # a line per request, whatever LOG_LEVEL says
        # Django's own handlers (plain text to stderr with DEBUG on, mail to admins) give way to the root's.
        "django": {"handlers": [], "level": "INFO"},
        "django.request": {"level": "ERROR"},  # 4xx are in kirim.requests already
        # runserver's request lines (Django's own setup, plus the key redacted from the query)
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
        # RQ's worker adds a handler of its own to a logger that has none
        "rq.worker": {"handlers": ["console"], "propagate": False},
    },
}
