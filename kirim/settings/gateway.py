"""Kirim's own behaviour: Meta's API and its retries, what is kept and how long, rate limits, and the
largest bodies and media each surface takes."""

from django.core.exceptions import ImproperlyConfigured

from kirim.settings.environment import env, required

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
# An agent counts as present for the round robin this long after one of her inbox pages last polled.
AGENT_PRESENT_SECONDS = env.int("AGENT_PRESENT_SECONDS", default=60)
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
