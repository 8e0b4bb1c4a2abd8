"""Kirim's Prometheus metrics: what each process counts, and the scrape at /metrics.

Counts are kept per process and summed at the scrape. Under gunicorn (and with task workers on the
same host) every process writes its counts to files in PROMETHEUS_MULTIPROC_DIR, the Prometheus
client's multiprocess mode, so a scrape answered by any worker sums every process's counts exactly.
What is a fact of the database (the events-out backlog, dead letters, workers' heartbeats) is not
counted at all: it is read from the database when the scrape comes, by the collectors the apps
register (`register_database_facts`), so every host answers the same.

Labels stay bounded: routes are URL patterns, Meta's outcomes its error codes, never an id of a
message, contact, key or org. docs/reference/metrics.md lists every metric; a test holds the two
together."""

import hmac
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest, start_http_server

from core.envelopes import error_response
from core.errors import InvalidApiKey, MethodNotAllowed, NotFound

logger = logging.getLogger("kirim.metrics")

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series, one process's start time: none in multiprocess mode either

# Seconds: a request or a Meta call. Meta answers in 100 to 500 ms, seconds when it is slow.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From Meta's webhook to the subscriber's 2xx: immediate, or after retries up to a day apart.
DELIVERY_LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)

http_requests = Counter(
    "kirim_http_requests", "HTTP requests answered, by URL pattern, method and status", ["route", "method", "status"]
)
http_duration = Histogram(
    "kirim_http_request_duration_seconds", "Time to answer an HTTP request", ["route", "method"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
meta_requests = Counter(
    "kirim_meta_requests",
    "HTTP requests to Meta's Graph API, each attempt, by operation and outcome (ok, Meta's error code, "
    "http_<status>, timeout, unreachable, not_json)",
    ["operation", "outcome"],
)
meta_duration = Histogram(
    "kirim_meta_request_duration_seconds", "Time Meta took to answer one attempt", ["operation"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
meta_webhooks = Counter(
    "kirim_meta_webhooks", "Meta's webhooks received, by outcome (applied, partial, unapplied, bad_signature)",
    ["outcome"],
)  # fmt: skip
meta_webhook_items = Counter(
    "kirim_meta_webhook_items", "Items (messages, statuses) of Meta's webhooks, stored or failed", ["outcome"]
)
read_receipts = Counter(
    "kirim_read_receipts",
    "Read receipts asked for, by what it took: already_read (no call), claimed (this request called Meta), "
    "waited (another request's call read it), taken_over (claimed after another's claim was released or ran out)",
    ["outcome"],
)
event_deliveries = Counter(
    "kirim_event_deliveries",
    "Attempts to deliver an event to a subscriber, by event type and outcome (delivered, retry, failed, dead)",
    ["event_type", "outcome"],
)
event_delivery_lag = Histogram(
    "kirim_event_delivery_lag_seconds", "From the event (Meta's webhook, a read) to the subscriber's 2xx",
    ["event_type"], buckets=DELIVERY_LAG_BUCKETS,
)  # fmt: skip
api_refusals = Counter(
    "kirim_api_refusals",
    "API requests refused before any work: rate_limit, invalid_api_key, expired_api_key, auth_failures_limit",
    ["reason"],
)
db_pool_in_use = Gauge(
    "kirim_db_pool_connections_in_use", "Pooled database connections handed out, all processes",
    multiprocess_mode="livesum",
)  # fmt: skip
db_pool_size = Gauge(
    "kirim_db_pool_connections_max", "Largest pool size (DB_POOL_SIZE), all processes", multiprocess_mode="livesum"
)
db_pool_waits = Counter("kirim_db_pool_waits", "Checkouts that waited for a pooled connection")
db_pool_wait_seconds = Counter("kirim_db_pool_wait_seconds", "Time spent waiting for a pooled connection")


def enabled() -> bool:
    return bool(settings.METRICS_ENABLED)


# Any other method a client makes up is counted as "other": a label's values stay few.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# (route, method, status) -> its counter and histogram: a request finds them with one dict lookup
# instead of the client's label checks (the routes, methods and statuses are few).
_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def http_request(route: str | None, method: str | None, status: int, seconds: float) -> None:
    if enabled():
        key = (route or "unmatched", method if method in HTTP_METHODS else "other", status)
        children = _http_children.get(key)
        if children is None:
            children = _http_children.setdefault(
                key, (http_requests.labels(key[0], key[1], str(status)), http_duration.labels(key[0], key[1]))
            )
        children[0].inc()
        children[1].observe(seconds)


def meta_request(operation: str, outcome: str, seconds: float) -> None:
    if enabled():
        meta_requests.labels(operation, outcome).inc()
        meta_duration.labels(operation).observe(seconds)


def meta_webhook(outcome: str, *, stored: int = 0, failed: int = 0) -> None:
    if enabled():
        meta_webhooks.labels(outcome).inc()
        if stored:
            meta_webhook_items.labels("stored").inc(stored)
        if failed:
            meta_webhook_items.labels("failed").inc(failed)


def read_receipt(outcome: str) -> None:
    if enabled():
        read_receipts.labels(outcome).inc()


def event_delivery(event_type: str, outcome: str, lag_seconds: float | None = None) -> None:
    if enabled():
        event_deliveries.labels(event_type, outcome).inc()
        if lag_seconds is not None:
            event_delivery_lag.labels(event_type).observe(lag_seconds)


def api_refused(reason: str) -> None:
    if enabled():
        api_refusals.labels(reason).inc()


class PoolWatch:
    """A process's pools, as psycopg's pool counts them: connections out, and waits turned into
    counters (a pool's own totals only grow, so each look adds what grew since that pool's last)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # pool -> (requests queued, ms waited) at the last look
        self.seen: weakref.WeakKeyDictionary[Any, tuple[int, int]] = weakref.WeakKeyDictionary()

    def look(self, pool: Any) -> None:
        if not enabled():
            return
        stats = pool.get_stats()
        db_pool_in_use.set(stats["pool_size"] - stats["pool_available"])
        queued, waited_ms = stats.get("requests_queued", 0), stats.get("requests_wait_ms", 0)
        with self.lock:
            first_look = pool not in self.seen
            queued_before, waited_before = self.seen.get(pool, (0, 0))
            self.seen[pool] = (queued, waited_ms)
        if first_look:  # a pool's size does not change
            db_pool_size.set(stats["pool_max"])
        if queued > queued_before:
            db_pool_waits.inc(queued - queued_before)
            db_pool_wait_seconds.inc((waited_ms - waited_before) / 1000)


pool_watch = PoolWatch()

# Scrape-time facts: each callable yields Metric families read from the database.
DatabaseFacts = Callable[[], Iterable[Metric]]
_database_facts: list[DatabaseFacts] = []


def register_database_facts(collect: DatabaseFacts) -> None:
    """Read `collect()` at every scrape (an app's AppConfig.ready registers its own)."""
    if collect not in _database_facts:
        _database_facts.append(collect)


class DatabaseFactsCollector:
    """The registered facts, and `kirim_database_up`: 0 when the database could not be read for them."""

    def collect(self) -> Iterator[Metric]:
        up = 1
        families: list[Metric] = []
        try:
            for facts in _database_facts:
                families.extend(facts())
        except Exception as error:  # noqa: BLE001 (a scrape must answer: the outage is itself a fact)
            logger.warning("metrics: the database facts could not be read (%s)", type(error).__name__)
            up, families = 0, []
        yield from families
        yield GaugeMetricFamily("kirim_database_up", "Whether the scrape could read the database's facts", value=up)


def _counts() -> CollectorRegistry:
    """Every process's counts, summed (this process's alone without a multiprocess directory)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def scrape() -> bytes:
    """The exposition text: the counts, then the database's facts."""
    facts = CollectorRegistry()
    facts.register(DatabaseFactsCollector())
    return generate_latest(_counts()) + generate_latest(facts)


def token_accepted(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics for Prometheus; with METRICS_TOKEN set, only with it as a bearer token."""
    if not enabled():
        return error_response(request, NotFound("Metrics are off here (METRICS_ENABLED=false)."))
    if request.method != "GET":
        return error_response(request, MethodNotAllowed("Scrape with GET.", headers={"Allow": "GET"}))
    if not token_accepted(request):
        return error_response(request, InvalidApiKey("Send METRICS_TOKEN as a bearer token."))
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def serve_for_worker() -> None:
    """A task worker on a host without Kirim's web server serves its counts on WORKER_METRICS_PORT
    (any path; no token: bind it to a private address, WORKER_METRICS_ADDRESS). The database's facts
    are the web server's to answer, once for all hosts."""
    if settings.METRICS_ENABLED and settings.WORKER_METRICS_PORT:
        start_http_server(settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDRESS, registry=_counts())
