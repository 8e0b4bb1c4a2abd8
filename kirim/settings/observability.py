"""Seeing inside (docs/operations/observability.md): metrics, the workers' heartbeats, error reports,
traces and the logs."""

from kirim.settings.environment import env

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
