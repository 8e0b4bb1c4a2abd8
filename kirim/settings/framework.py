"""Django and its libraries put together: the apps, the middleware, templates, static files, and DRF
with its schema."""

from kirim.settings.base import DEBUG, DEV_TOOLS
from kirim.settings.environment import BASE_DIR
from kirim.settings.workers import TASKS_BACKEND

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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
