"""Per-org rate limits on /v1/, in fixed one-minute windows counted in the database: every worker
process and host sees the same count. Headers say where the caller stands. And a throttle on failed
authentications per client address (AuthFailures), which costs the database no write per failure."""

import ipaddress
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core import metrics
from orgs.models import KEY_WITH_ORG_BY_DIGEST, ApiKey, AuthFailureWindow, MinuteWindow, Org, RateLimitWindow

if TYPE_CHECKING:  # DRF's views read the settings, which name these classes: a cycle at run time
    from rest_framework.views import APIView

WINDOW_SECONDS = 60


def _upsert(model: type[MinuteWindow], key: str, rows: str) -> str:
    """INSERT of `rows` (a VALUES or SELECT of `key`, minute, count) adding their count to existing
    windows of `model`; the window's count after it."""
    table = connection.ops.quote_name(model._meta.db_table)
    return f"""INSERT INTO {table} ({key}, minute, count) {rows}
               ON CONFLICT ({key}, minute) DO UPDATE SET count = {table}.count + EXCLUDED.count RETURNING count"""


def count_request(org_id: int, minute: int) -> int:
    """Add this request to the org's window; the window's count after it. One statement."""
    with connection.cursor() as cursor:
        cursor.execute(_upsert(RateLimitWindow, "org_id", "VALUES (%s, %s, 1)"), [org_id, minute])
        count: int = cursor.fetchone()[0]
        return count


@dataclass(frozen=True)
class KeyCheck:
    """request.auth for a request with an API key: the key (with its org), and this request counted in
    the org's rate-limit window, (minute, count after it); None for a revoked or expired key's."""

    key: ApiKey
    window: tuple[int, int] | None


def key_counting_request(secret: str, now: datetime) -> KeyCheck | None:
    """The KeyCheck of the API key with this secret, or None. An active key's request is counted in
    its org's window; a revoked or expired key's is not.

    On PostgreSQL the count rides in the lookup's statement (a data-modifying WITH): one round trip
    for every API request instead of two, about 0.4 ms. SQLite has no such WITH: two statements."""
    minute = int(now.timestamp() // WINDOW_SECONDS)
    if connection.vendor != "postgresql":
        key = ApiKey.for_secret(secret)
        if key is None:
            return None
        return KeyCheck(key, (minute, count_request(key.org_id, minute)) if key.is_active(now) else None)
    digest = ApiKey.digest_of(secret)
    keys = connection.ops.quote_name(ApiKey._meta.db_table)
    active_key_org = (
        f"SELECT org_id, %s, 1 FROM {keys} "
        "WHERE digest = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)"
    )
    sql = f"WITH counted AS ({_upsert(RateLimitWindow, 'org_id', active_key_org)}) " + KEY_WITH_ORG_BY_DIGEST.select(
        "(SELECT count FROM counted)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [minute, digest, now, digest])
        row = cursor.fetchone()
    if row is None:
        return None
    return KeyCheck(KEY_WITH_ORG_BY_DIGEST.instance(row), None if row[-1] is None else (minute, row[-1]))


class OrgRateLimit(BaseThrottle):
    """Decides on the count the authentication made (`key_counting_request`)."""

    retry_after: int  # seconds; set by allow_request before DRF asks wait()

    def allow_request(self, request: Request, view: "APIView") -> bool:
        org = request.user  # Kirim's authentications give the org as the user (orgs.auth)
        if request.auth is None or not isinstance(org, Org):  # health and the schema: no key, no org to count
            return True
        minute, count = request.auth.window
        limit = org.rate_limit_per_minute  # 0 stops the org: every request is refused
        if limit is None:
            limit = settings.RATE_LIMIT_PER_MINUTE
        reset_at = (minute + 1) * WINDOW_SECONDS
        self.retry_after = max(1, int(reset_at - time.time() + 0.999))
        rate_limit_standing.set(RateLimitStanding(limit=limit, remaining=max(0, limit - count), reset_at=reset_at))
        if count > limit:
            metrics.api_refused("rate_limit")
            return False
        return True

    def wait(self) -> int:
        return self.retry_after


@dataclass(frozen=True)
class RateLimitStanding:
    """Where a request leaves its org against the limit, told in the answer's headers."""

    limit: int
    remaining: int
    reset_at: int  # Unix time the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


# The request's standing, once OrgRateLimit has decided; the middleware around the request reads it.
rate_limit_standing: ContextVar[RateLimitStanding | None] = ContextVar("rate_limit_standing", default=None)


class RateLimitHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = rate_limit_standing.set(None)
        try:
            response = self.get_response(request)
            standing = rate_limit_standing.get()
        finally:
            rate_limit_standing.reset(started)
        if standing is not None:
            for name, value in standing.headers().items():
                response[name] = value
        return response


# A process adds an address's failures to the shared window this many at a time.
AUTH_FAILURE_BATCH = 10
KNOWN_GOOD_KEYS = 10_000  # digests remembered per process; forgotten all at once when full


def client_address(request: HttpRequest | Request) -> str:
    """Who sent the request: the address the outermost of TRUSTED_PROXY_COUNT proxies saw (each
    appends to X-Forwarded-For), else the socket's peer. IPv6 counts per /64, what one host gets."""
    address: str = request.META.get("REMOTE_ADDR", "")
    if settings.TRUSTED_PROXY_COUNT:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if forwarded:
            address = forwarded[-min(settings.TRUSTED_PROXY_COUNT, len(forwarded))]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False)) if parsed.version == 6 else str(parsed)


# A fast path, with its plain path and their equivalence test: docs/development/performance.md.
class AuthFailures:
    """Failed API authentications per client address and minute; past AUTH_FAILURES_PER_MINUTE the
    address is refused (429) without a query, until the minute ends.

    A failure writes nothing to the database: each process counts in memory, and adds an address's
    count to the shared window (AuthFailureWindow, unlogged) one batch of AUTH_FAILURE_BATCH at a
    time, learning in the same statement the total of every process and host. So an address gets at
    most the limit plus a batch per process before all of them refuse it, at one unlogged upsert per
    batch. A key this process has seen succeed still gets through a refused address (clients behind
    one NAT or a misconfigured proxy share an address with whoever is guessing)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.minute: int | None = None
        self.unflushed: dict[str, int] = {}  # address -> failures not yet added to the shared window
        self.total: dict[str, int] = {}  # address -> every process's failures, as last known here
        self.known_good: set[str] = set()  # digests of keys that authenticated in this process

    def _roll(self, minute: int) -> None:
        if minute != self.minute:
            self.minute, self.unflushed, self.total = minute, {}, {}

    def retry_after(self, request: Request, now: float) -> int | None:
        """Seconds until the address may try again, or None when it may now."""
        minute = int(now // WINDOW_SECONDS)
        with self.lock:
            self._roll(minute)
            if not self.total:  # no failures this minute, the usual case: the address is not needed
                return None
            if self.total.get(client_address(request), 0) < settings.AUTH_FAILURES_PER_MINUTE:
                return None
        return max(1, int((minute + 1) * WINDOW_SECONDS - now + 0.999))

    def is_known_good(self, secret: str) -> bool:
        return ApiKey.digest_of(secret) in self.known_good

    def succeeded(self, key: ApiKey) -> None:
        if key.digest not in self.known_good:
            if len(self.known_good) >= KNOWN_GOOD_KEYS:
                self.known_good.clear()
            self.known_good.add(key.digest)

    def failed(self, request: Request, now: float) -> None:
        address, minute = client_address(request), int(now // WINDOW_SECONDS)
        with self.lock:
            self._roll(minute)
            batch = self.unflushed.get(address, 0) + 1
            self.total[address] = self.total.get(address, 0) + 1
            limit = settings.AUTH_FAILURES_PER_MINUTE
            if batch < min(AUTH_FAILURE_BATCH, limit) and self.total[address] < limit:
                self.unflushed[address] = batch
                return
            self.unflushed[address] = 0
        with connection.cursor() as cursor:  # outside the lock: other threads need not wait on it
            cursor.execute(_upsert(AuthFailureWindow, "address", "VALUES (%s, %s, %s)"), [address, minute, batch])
            shared: int = cursor.fetchone()[0]
        with self.lock:
            if self.minute == minute:  # failures counted here since the flush are not in `shared` yet
                since = self.unflushed.get(address, 0)
                self.total[address] = max(self.total.get(address, 0), shared + since)


auth_failures = AuthFailures()
