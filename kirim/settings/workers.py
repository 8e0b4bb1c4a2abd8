"""The work done beside requests: events out to subscribers and their retries, the scheduler's
periodic jobs, and the task queue they run on."""

from django.core.exceptions import ImproperlyConfigured

from kirim.settings.environment import env, networks

# Events out (outbox/): webhook subscriptions and their deliveries.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)  # development and tests only
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
