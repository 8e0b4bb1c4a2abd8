"""Per-org rate limits on /v1/, in fixed one-minute windows counted in the database: every worker
process and host sees the same count. Headers say where the caller stands."""

import time

from django.conf import settings
from django.db import connection
from rest_framework.throttling import BaseThrottle

from inbox.models import RateLimitWindow

WINDOW_SECONDS = 60


def count_request(org_id, minute):
    """Add this request to the org's window; the window's count after it. One statement."""
    table = connection.ops.quote_name(RateLimitWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (org_id, minute, count) VALUES (%s, %s, 1)
                ON CONFLICT (org_id, minute) DO UPDATE SET count = {table}.count + 1
                RETURNING count""",
            [org_id, minute],
        )
        return cursor.fetchone()[0]


class OrgRateLimit(BaseThrottle):
    def allow_request(self, request, view):
        org = request.user
        if request.auth is None:  # health and the schema: no key, no org to count against
            return True
        limit = org.rate_limit_per_minute or settings.RATE_LIMIT_PER_MINUTE
        now = time.time()
        minute = int(now // WINDOW_SECONDS)
        count = count_request(org.pk, minute)
        reset_at = (minute + 1) * WINDOW_SECONDS
        self.retry_after = max(1, int(reset_at - now + 0.999))
        # Read by RateLimitHeadersMiddleware when the response leaves.
        request._request.rate_limit = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - count)),
            "X-RateLimit-Reset": str(reset_at),
        }
        return count <= limit

    def wait(self):
        return self.retry_after


class RateLimitHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in getattr(request, "rate_limit", {}).items():
            response[name] = value
        return response
